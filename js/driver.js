// Drives one call's Rust future (src/wasm/driver.rs): polls it, and when it hands over a
// promise (an HTTP exchange), awaits that promise here and polls again with its outcome; when it
// waits for anything else (a timer, a caller's promise), parks until its waker calls `wake`. A
// call is thus one async function with one native `await` per exchange, instead of promise
// adapters and closures made per call. No decision is made here.
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy
// (TypeScript's compiler) for the nodejs glue, which `require`s it.

// What `poll` returns (the same numbers are in src/wasm/driver.rs).
const [DONE, FAILED, AWAIT] = [0, 1, 2];

// Parked tasks: id -> the function that resumes their driver.
const PARKED = new Map();

/** Resumes the driver of a parked task (a spurious wake just costs a poll). */
export function wake(id) {
  const resume = PARKED.get(id);
  if (resume !== undefined) {
    PARKED.delete(id);
    resume();
  }
}

/** The promise of task `id`'s result: `poll(id, value, ok)` steps it, `take()` hands a value back. */
export async function drive(poll, take, id) {
  let value;
  let ok = true;
  for (;;) {
    const state = poll(id, value, ok);
    if (state === DONE) return take();
    if (state === FAILED) throw take();
    if (state === AWAIT) {
      try {
        value = await take();
        ok = true;
      } catch (error) {
        value = error;
        ok = false;
      }
    } else {
      await new Promise((resume) => PARKED.set(id, resume));
      value = undefined;
      ok = true;
    }
  }
}

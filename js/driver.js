// Drives one call's Rust future (src/wasm/driver.rs): polls it, and when it hands over a
// promise (an HTTP exchange), awaits that promise here and polls again with its outcome; when it
// waits for anything else (a timer, a caller's promise), parks until its waker calls `wake`. A
// call is thus one async function with one native `await` per exchange, instead of promise
// adapters and closures made per call. No decision is made here.
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy
// (TypeScript's compiler) for the nodejs glue, which `require`s it.

/** What `poll` returns when the task failed; the next `poll` returns the error. */
export const FAILED = Object.freeze({ failed: true });
/** What `poll` returns when the task waits for a wake-up. */
export const PARK = Object.freeze({ park: true });

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

/**
 * The promise of task `id`'s result. `poll(id, value, ok)` steps the task with the outcome of
 * what it last handed over and returns its result, a promise to await (a result is never one),
 * PARK or FAILED.
 */
export async function drive(poll, id) {
  let value;
  let ok = true;
  for (;;) {
    const out = poll(id, value, ok);
    if (out instanceof Promise) {
      try {
        value = await out;
        ok = true;
      } catch (error) {
        value = error;
        ok = false;
      }
    } else if (out === PARK) {
      await new Promise((resume) => PARKED.set(id, resume));
      value = undefined;
      ok = true;
    } else if (out === FAILED) {
      throw poll(id, undefined, true);
    } else {
      return out;
    }
  }
}

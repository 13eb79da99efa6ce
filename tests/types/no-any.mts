// Fails to compile if any public method takes or returns `any`: `any` is the only type for which
// `0 extends (1 & T)` holds.
import type { SandboxClient, Sandbox } from 'tensorlake-snapshots';

type IsAny<T> = 0 extends 1 & T ? true : false;
type AnyInFunction<F> = F extends (...args: infer A) => infer R
  ? IsAny<R> extends true ? true : true extends { [K in keyof A]: IsAny<A[K]> }[number] ? true : false
  : false;
type MethodsWithAny<T> = { [K in keyof T]: AnyInFunction<T[K]> extends true ? K : never }[keyof T];

const clientClean: [MethodsWithAny<SandboxClient>] extends [never] ? true : MethodsWithAny<SandboxClient> = true;
const sandboxClean: [MethodsWithAny<Sandbox>] extends [never] ? true : MethodsWithAny<Sandbox> = true;
const commandsClean: [MethodsWithAny<Sandbox['commands']>] extends [never] ? true : MethodsWithAny<Sandbox['commands']> = true;
export { clientClean, sandboxClean, commandsClean };

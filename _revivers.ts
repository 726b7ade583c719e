// How a worker rebuilds the queues, pipe ends and sync primitives it
// receives in task arguments, initArgs and a Process's args: one reviver per
// class, handed explicitly to reviveValues by the worker bootstrap
// (_bootstrap.ts), the one file that needs them, instead of being
// registered as a side effect of importing queue.ts or sync.ts.
import { Adoption, type AnyCore, type Revivers } from "./_share.ts";
import { DictProxy, ListProxy, NamespaceProxy, ValueProxy } from "./manager.ts";
import { Connection, JoinableQueue, Queue, SimpleQueue } from "./queue.ts";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  Lock,
  RLock,
  Semaphore,
  SharedArray,
  Value,
} from "./sync.ts";

/** A public class's constructor as it is called with its cores. */
type Adoptable = new (
  adoption: Adoption<AnyCore>,
  ...rest: unknown[]
) => unknown;

// The public constructors take an Adoption only in their private overload.
function adopt(
  kind: unknown,
  cores: readonly (AnyCore | undefined)[],
  ...rest: unknown[]
): unknown {
  return new (kind as Adoptable)(new Adoption(cores), ...rest);
}

// A condition's lock is rebuilt first, as the class its shared form names.
function reviveCondition(
  cores: readonly AnyCore[],
  options: Record<string, unknown>,
): unknown {
  const lock = adopt(options.lock === "Lock" ? Lock : RLock, [cores[1]]);
  return adopt(Condition, [cores[0]], lock);
}

/** The revivers of every shareable class, by the type in its shared form. */
export const revivers: Revivers = {
  Queue: (cores) => adopt(Queue, cores),
  JoinableQueue: (cores) => adopt(JoinableQueue, cores),
  SimpleQueue: (cores) => adopt(SimpleQueue, cores),
  // A one-way end has one core: which one is in the options.
  Connection: (cores, options) => {
    const incoming = options.incoming ? cores[0] : undefined;
    const outgoing = options.outgoing
      ? cores[options.incoming ? 1 : 0]
      : undefined;
    return adopt(Connection, [incoming, outgoing]);
  },
  Lock: (cores) => adopt(Lock, cores),
  RLock: (cores) => adopt(RLock, cores),
  Semaphore: (cores) => adopt(Semaphore, cores),
  BoundedSemaphore: (cores) => adopt(BoundedSemaphore, cores),
  Event: (cores) => adopt(Event, cores),
  Condition: reviveCondition,
  Barrier: (cores, options) => adopt(Barrier, cores, options),
  Value: (cores, options) => adopt(Value, cores, undefined, options),
  SharedArray: (cores, options) =>
    adopt(SharedArray, cores, undefined, options),
  DictProxy: (cores, options) => adopt(DictProxy, cores, options),
  ListProxy: (cores, options) => adopt(ListProxy, cores, options),
  NamespaceProxy: (cores, options) => adopt(NamespaceProxy, cores, options),
  ValueProxy: (cores, options) => adopt(ValueProxy, cores, options),
};

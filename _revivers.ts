// How a worker rebuilds the queues and pipe ends it receives in task
// arguments, initArgs and a Process's args: one reviver per class, handed
// explicitly to reviveValues by the worker bootstrap (_bootstrap.ts), the one
// file that needs them, instead of being registered as a side effect of
// importing queue.ts.
import { Adoption, type Revivers } from "./_share.ts";
import { Connection, JoinableQueue, Queue, SimpleQueue } from "./queue.ts";

/** A public class's constructor as it is called with its cores. */
type Adoptable = new (adoption: Adoption) => unknown;

/** The revivers of every shareable class, by the type in its shared form. */
export const revivers: Revivers = {
  Queue: (cores) => new (Queue as Adoptable)(new Adoption(cores)),
  JoinableQueue: (cores) =>
    new (JoinableQueue as Adoptable)(new Adoption(cores)),
  SimpleQueue: (cores) => new (SimpleQueue as Adoptable)(new Adoption(cores)),
  // A one-way end has one core: which one is in the options.
  Connection: (cores, options) => {
    const incoming = options.incoming ? cores[0] : undefined;
    const outgoing = options.outgoing
      ? cores[options.incoming ? 1 : 0]
      : undefined;
    return new (Connection as Adoptable)(new Adoption([incoming, outgoing]));
  },
};

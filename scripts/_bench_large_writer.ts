// The raw floor of the large-item benchmark: writes `count` items of `size`
// bytes to its stdout (one OS pipe) once a byte arrives on its stdin.
import { writeSync } from "node:fs";
import process from "node:process";

const [count, size] = process.argv.slice(2).map(Number);
const item = new Uint8Array(size!);

process.stdin.once("data", () => {
  process.stdin.pause();
  for (let i = 0; i < count!; i++) {
    for (let offset = 0; offset < size!;) {
      try {
        offset += writeSync(1, item, offset);
      } catch (error) {
        // A non-blocking pipe that is full: try again.
        if ((error as { code?: string }).code !== "EAGAIN") throw error;
      }
    }
  }
  process.exit(0);
});

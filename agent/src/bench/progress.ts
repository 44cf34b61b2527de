// Progress of a bench on stderr: a bar redrawn in place on a terminal, one plain line per run otherwise (CI logs).
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  constructor(private readonly total: number, private readonly tty = !!process.stderr.isTTY) {}

  private bar(label: string): string {
    const width = 30;
    const filled = Math.round((this.done / this.total) * width);
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.done}/${this.total} ${elapsed}s ${label}`;
  }

  /** A run begins. */
  begin(label: string) {
    if (this.tty) process.stderr.write(`\r\x1b[2K${this.bar(label)}`);
  }

  /** A run ended; `line` says what it measured. */
  end(line: string) {
    this.done++;
    if (this.tty) process.stderr.write(`\r\x1b[2K${this.bar(line)}`);
    else process.stderr.write(`bench: ${this.done}/${this.total} ${line}\n`);
  }

  finish() {
    if (this.tty) process.stderr.write("\n");
  }
}

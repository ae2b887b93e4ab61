/**
 * Plain-text tables for terminal summaries: columns padded to their widest cell, and, when the
 * table is wider than the terminal, the widest columns narrowed one character at a time until it
 * fits, their cells wrapped at spaces (a word longer than its column is cut). Off a terminal (a
 * pipe, a file) nothing wraps, so each row stays one line for grep.
 */
const GAP = 2;
/** A column is never narrowed below this (or below its header's longest word). */
const MIN_COLUMN = 8;

export function formatTable(header: string[], rows: string[][], width = terminalWidth()): string {
  const natural = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const widths = fitWidths(natural, header, width);
  const lines = (cells: string[]) => {
    const wrapped = cells.map((cell, column) => wrap(cell, widths[column]));
    const height = Math.max(1, ...wrapped.map((parts) => parts.length));
    return Array.from({ length: height }, (_, line) =>
      wrapped
        .map((parts, column) =>
          column === cells.length - 1
            ? (parts[line] ?? '')
            : (parts[line] ?? '').padEnd(widths[column]),
        )
        .join(' '.repeat(GAP))
        .trimEnd(),
    );
  };
  return [
    ...lines(header),
    widths.map((w) => '-'.repeat(w)).join(' '.repeat(GAP)),
    ...rows.flatMap(lines),
  ].join('\n');
}

/** The width of standard output when it is a terminal; undefined (no wrapping) otherwise. */
function terminalWidth(): number | undefined {
  return process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : undefined;
}

/** Column widths whose sum (with gaps) fits `width`, narrowing the widest column first. */
export function fitWidths(
  natural: number[],
  header: string[],
  width: number | undefined,
): number[] {
  const widths = [...natural];
  if (width === undefined) return widths;
  const floor = header.map((title, column) =>
    Math.min(natural[column], Math.max(MIN_COLUMN, ...title.split(' ').map((word) => word.length))),
  );
  const total = () => widths.reduce((a, b) => a + b, 0) + GAP * (widths.length - 1);
  while (total() > width) {
    let widest = -1;
    for (let column = 0; column < widths.length; column++) {
      if (widths[column] > floor[column] && (widest < 0 || widths[column] > widths[widest]))
        widest = column;
    }
    if (widest < 0) break; // every column at its floor: the table stays wider than the terminal
    widths[widest]--;
  }
  return widths;
}

/** `text` in lines of at most `width` characters, broken at spaces where it can be. */
export function wrap(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (let word of text.split(' ')) {
    while (word.length > width) {
      if (line) {
        lines.push(line);
        line = '';
      }
      lines.push(word.slice(0, width));
      word = word.slice(width);
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

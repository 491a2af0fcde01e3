/** One row of the benchmark table (bench/results/latest.md, dev-docs/performance.md). */
export interface Row {
  figure: string;
  measure: string;
  gatehouse: string;
  reference: string;
  ratio: string;
  target: string;
  met: boolean | null;
}

export function markdownTable(rows: Row[]): string {
  const lines = [
    '| # | measure | Gatehouse | reference | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.figure} | ${r.measure} | ${r.gatehouse} | ${r.reference} | ${r.ratio} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`,
    ),
  ];
  return lines.join('\n') + '\n';
}

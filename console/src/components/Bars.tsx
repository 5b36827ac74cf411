// A bar chart drawn in SVG (no chart library: nothing to fetch, nothing inline to allow),
// with its numbers in a table beside it for screen readers and for reading exact values.

/** One bar: its label and value. */
export interface BarDatum {
  label: string;
  value: number;
}

/** Bars with a caption; the same data as a table, visually hidden. */
export function Bars({ data, caption, unit }: { data: BarDatum[]; caption: string; unit: string }) {
  const peak = Math.max(1, ...data.map((d) => d.value));
  // Few bars get room for their labels; many are drawn narrow, labelled at both ends.
  const slot = data.length <= 12 ? 72 : 16;
  const width = Math.max(1, data.length) * slot;
  const labelled = (i: number) => data.length <= 12 || i === 0 || i === data.length - 1;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} 130`} width={width} height="130" role="img" aria-label={`${caption}: ${data.length} bars, highest ${peak} ${unit}`}>
        {data.map((d, i) => {
          const h = (d.value / peak) * 96;
          return (
            <g key={d.label}>
              <rect x={i * slot + 2} y={100 - h} width={slot - 4} height={h} class="bar-fg">
                <title>
                  {d.label}: {d.value} {unit}
                </title>
              </rect>
              {data.length <= 12 && (
                <text x={i * slot + slot / 2} y={100 - h - 3} class="bar-value" text-anchor="middle">
                  {d.value}
                </text>
              )}
              {labelled(i) && (
                <text x={i * slot + (data.length <= 12 ? slot / 2 : 0)} y="118" class="bar-label" text-anchor={data.length <= 12 ? "middle" : "start"}>
                  {d.label}
                </text>
              )}
            </g>
          );
        })}
        <line x1="0" y1="100" x2={width} y2="100" class="axis" />
      </svg>
      <figcaption>{caption}</figcaption>
      <table class="sr-only">
        <caption>{caption}</caption>
        <tbody>
          {data.map((d) => (
            <tr key={d.label}>
              <th scope="row">{d.label}</th>
              <td>
                {d.value} {unit}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

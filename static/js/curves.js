// Line charts of training curves with the vendored uPlot: one series per run, x in epochs.
// drawCurves(target, runs, {x, y, value, range}) draws `runs` ([{label, x: [...], <value>: [...]}])
// and returns {update(runs)} to redraw with new points (the live run view calls it per event).
/* global uPlot */

const COLOURS = ["#0b5cad", "#b3541e", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"];

// uPlot wants one shared x array: merge every run's x values, with nulls where a run has none.
function aligned(runs, value) {
  const xs = [...new Set(runs.flatMap((run) => run.x.filter((x) => x !== null)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const series = runs.map((run) => {
    const ys = new Array(xs.length).fill(null);
    run.x.forEach((x, i) => {
      if (x !== null && index.has(x)) ys[index.get(x)] = run[value][i];
    });
    return ys;
  });
  return [xs, ...series];
}

export function drawCurves(target, runs, { x, y, value, height = 260, range = null }) {
  let plot = null;
  let current = runs;

  function options() {
    return {
      width: Math.max(280, target.clientWidth),
      height,
      scales: { x: { time: false }, ...(range ? { y: { range: () => range } } : {}) },
      axes: [{ label: x }, { label: y, size: 60 }],
      legend: { show: current.length > 1 },
      series: [
        { label: x },
        ...current.map((run, i) => ({
          label: run.label,
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          spanGaps: true,
          points: { show: false },
        })),
      ],
    };
  }

  function draw() {
    if (plot) plot.destroy();
    target.replaceChildren();
    plot = new uPlot(options(), aligned(current, value), target);
  }

  draw();
  // A resize only changes the width: resizing in place keeps the page from shifting under the
  // reader (and under a click), which destroying and drawing again would do.
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => plot.setSize({ width: Math.max(280, target.clientWidth), height }), 150);
  });
  return {
    update(runs) {
      const reshape = runs.length !== current.length;
      current = runs;
      if (reshape) draw();
      else plot.setData(aligned(current, value));
    },
  };
}

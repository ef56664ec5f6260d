// The usage page's chart: GPU-hours per day of the period, drawn with the vendored uPlot from
// the figures the page embeds (#usage-data). The table under the chart holds the same figures.
/* global uPlot */

const data = JSON.parse(document.getElementById("usage-data").textContent);
const target = document.getElementById("usage-chart");
const days = data.days.map((day) => Date.parse(`${day}T00:00:00Z`) / 1000);
const hours = data.used.map((seconds) => seconds / 3600);

function draw() {
  const options = {
    width: Math.max(280, target.clientWidth),
    height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: {
      x: { time: true, range: (u, min, max) => [min - 43200, max + 43200] },
      y: { range: (u, min, max) => [0, Math.max(max, 0.01) * 1.1] },
    },
    axes: [{}, { label: "GPU-hours", size: 60 }],
    legend: { show: false },
    series: [
      {},
      {
        label: "GPU-hours",
        stroke: "#0b5cad",
        fill: "rgba(11, 92, 173, 0.3)",
        paths: uPlot.paths.bars({ size: [0.7, 40] }),
        points: { show: false },
      },
    ],
  };
  return new uPlot(options, [days, hours], target);
}

target.replaceChildren();
const plot = draw();
// Resized in place, so the page does not shift as it would if the chart were drawn again.
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => plot.setSize({ width: Math.max(280, target.clientWidth), height: 240 }), 150);
});

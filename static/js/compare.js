// The comparison page: both runs' training curves overlaid (one series per run), drawn with the
// run page's charts from the data the page embeds.

import { drawCurves } from "./curves.js";

const data = JSON.parse(document.getElementById("compare-curves").textContent);
const loss = document.getElementById("compare-loss");
const accuracy = document.getElementById("compare-accuracy");
drawCurves(loss, data.runs, { x: data.text.epochs, y: data.text.loss, value: "loss" });
drawCurves(accuracy, data.runs, { x: data.text.epochs, y: data.text.accuracy, value: "accuracy", range: [0, 1] });
// What was drawn, for readers of the page's state (and its browser test): series per chart.
loss.dataset.series = String(data.runs.length);
accuracy.dataset.series = String(data.runs.length);

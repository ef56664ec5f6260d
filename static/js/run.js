// The run page, live: the job's events arrive over its websocket (replayed from the first, then
// as they happen); the loss and accuracy curves, the progress bar and the ETA follow them, and
// when the run ends the result (grade, metrics, confusion matrix) is fetched into the page.

import { drawCurves } from "./curves.js";

const config = JSON.parse(document.getElementById("run-config").textContent);
const status = document.getElementById("run-status");
const progress = document.getElementById("run-progress");
const eta = document.getElementById("run-eta");
const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

let run = { label: config.text.run, x: [], loss: [], accuracy: [] };
const lossChart = drawCurves(document.getElementById("loss-chart"), [run], {
  x: config.text.epochs,
  y: config.text.loss,
  value: "loss",
});
const accuracyChart = drawCurves(document.getElementById("accuracy-chart"), [run], {
  x: config.text.epochs,
  y: config.text.accuracy,
  value: "accuracy",
  range: [0, 1],
});
let lastSeq = 0;
let ended = FINAL.has(config.jobState);

// The page's words come translated in its config: "{name}" marks where a value goes.
function say(key, values = {}) {
  return config.text[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

function seconds(value) {
  const s = Math.round(value);
  return s >= 60 ? say("minutes", { minutes: Math.floor(s / 60), seconds: s % 60 }) : say("seconds", { seconds: s });
}

// A point as runtime/progress.py defines it (every field present, null when unknown);
// points stored before fraction_done existed have step and steps.
function onProgress(point) {
  const done = point.fraction_done ?? point.step / point.steps;
  run.x.push(Math.round(done * point.epochs * 10000) / 10000);
  run.loss.push(point.loss);
  run.accuracy.push(point.val_accuracy ?? point.train_accuracy);
  lossChart.update([run]);
  accuracyChart.update([run]);
  document.getElementById("loss-chart").dataset.points = String(run.loss.filter((v) => v !== null).length);
  document.getElementById("accuracy-chart").dataset.points = String(run.accuracy.filter((v) => v !== null).length);
  progress.value = done;
  progress.setAttribute("aria-valuetext", `${Math.round(done * 100)}%`);
  const loss = point.loss === null ? "?" : point.loss.toFixed(4);
  status.textContent = say("training", { epoch: point.epoch, epochs: point.epochs, loss });
  eta.textContent = point.eta === null ? "" : say("eta", { time: seconds(point.eta) });
}

async function showResult() {
  const cancel = document.getElementById("cancel-form");
  if (cancel) cancel.remove();
  const response = await fetch(config.resultUrl, { credentials: "same-origin" });
  if (response.ok) document.getElementById("result").innerHTML = await response.text();
}

function onEvent(event) {
  if (event.seq <= lastSeq) return;
  lastSeq = event.seq;
  if (event.type === "progress") onProgress(event.payload);
  else if (event.type === "started") {
    if (event.attempt > 1) run = { label: config.text.run, x: [], loss: [], accuracy: [] };
    status.textContent = say("started");
  } else if (event.type === "queued") status.textContent = say("queued");
  else if (event.type === "requeued") status.textContent = say("requeued");
  else if (event.type === "cancel_requested") status.textContent = say("cancelling");
  else if (FINAL.has(event.type)) {
    progress.value = event.type === "succeeded" ? 1 : progress.value;
    status.textContent = event.payload.message || event.type;
    eta.textContent = "";
    if (!ended) showResult();
    ended = true;
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}${config.socket}?after=${lastSeq}`);
  socket.addEventListener("message", (message) => onEvent(JSON.parse(message.data)));
  socket.addEventListener("close", (close) => {
    // The server closes after the final event (1000); anything else: reconnect where we were.
    if (!ended && close.code !== 4401 && close.code !== 4403 && close.code !== 4404) {
      setTimeout(connect, 1000);
    }
  });
}

connect();

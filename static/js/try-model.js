// Try your model: an input that fits the model's dataset (a canvas to draw on, an image to upload,
// points to click on a plane, numbers or tokens to type), turned into the tensor the model takes
// exactly as the grader gives it (raw values: the preprocessing is inside the ONNX graph), and
// the class probabilities it answers. The model runs here with onnxruntime-web when the page
// says it is small enough, else on the server's inference pool through the prediction API: the
// same ONNX file either way.
//
// The config (json_script "try-config", built by apps/trained_models/try_inputs.py):
//   { onnx_url, predict_url, in_browser, max_batch, ort_base, csrf, class_names,
//     input: { widget: "draw"|"upload"|"plane"|"numbers"|"tokens", shape: [...one sample],
//              dtype: "float32"|"int64", layout: "vector"|"image", grid: [h, w],
//              channels, max_value, plane: { x: [lo, hi], y: [lo, hi] }, vocabulary: [...] },
//     text: { ...the page's words, translated; "{name}" marks where a value goes } }
// window.aulaTry (for the tests): the last input sent and the probabilities that came back.

const root = document.getElementById("try-model");
const config = JSON.parse(document.getElementById("try-config").textContent);
const input = config.input;
const status = document.getElementById("try-status");
const list = document.getElementById("try-probabilities");
const perSample = input.shape.reduce((a, b) => a * b, 1);
window.aulaTry = { lastInput: null, lastProbabilities: null, where: null, predict };

function say(key, values = {}) {
  return config.text[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

// --- running the model ------------------------------------------------------------------------
let session = null;

async function browserSession() {
  if (session) return session;
  const ort = await import(config.ort_base + "ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = config.ort_base;
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; one is plenty here
  const bytes = await fetch(config.onnx_url, { credentials: "same-origin" }).then((response) => {
    if (!response.ok) throw new Error(say("download_failed", { status: response.status }));
    return response.arrayBuffer();
  });
  session = { ort, run: await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] }) };
  return session;
}

// `values`: a flat array of `count` samples; answers an array of probability rows.
async function predict(values, count) {
  const classes = config.class_names.length;
  if (config.in_browser) {
    const { ort, run } = await browserSession();
    const data = input.dtype === "int64" ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values);
    const tensor = new ort.Tensor(input.dtype, data, [count, ...input.shape]);
    const output = await run.run({ [run.inputNames[0]]: tensor });
    const flat = output[run.outputNames[0]].data;
    window.aulaTry.where = "browser";
    return Array.from({ length: count }, (_, i) => Array.from(flat.slice(i * classes, (i + 1) * classes)));
  }
  // The server takes at most config.max_batch samples a call (a boundary's grid is several).
  const rows = [];
  for (let start = 0; start < count; start += config.max_batch) {
    const inputs = [];
    for (let i = start; i < Math.min(count, start + config.max_batch); i++) {
      inputs.push(values.slice(i * perSample, (i + 1) * perSample));
    }
    const response = await fetch(config.predict_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf },
      body: JSON.stringify({ inputs }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || say("server_failed", { status: response.status }));
    rows.push(...body.predictions.map((prediction) => prediction.probabilities));
  }
  window.aulaTry.where = "server";
  return rows;
}

async function show(values) {
  status.textContent = say("running");
  try {
    const [probabilities] = await predict(values, 1);
    window.aulaTry.lastInput = Array.from(values);
    window.aulaTry.lastProbabilities = probabilities;
    const ranked = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    list.replaceChildren(
      ...ranked.map(([p, i]) => {
        const item = document.createElement("li");
        const name = document.createElement("span");
        name.className = "label";
        name.textContent = config.class_names[i];
        const meter = document.createElement("meter");
        meter.min = 0;
        meter.max = 1;
        meter.value = p;
        const value = document.createElement("span");
        value.className = "probability";
        value.textContent = p.toFixed(4);
        item.append(name, " ", meter, " ", value);
        return item;
      }),
    );
    status.textContent = say("answer", { label: config.class_names[ranked[0][1]], p: ranked[0][0].toFixed(3) });
    root.dataset.predictions = String(Number(root.dataset.predictions || 0) + 1);
  } catch (error) {
    status.textContent = error.message;
  }
}

// --- pixels to the model's input ----------------------------------------------------------------
// A canvas's pixels, scaled to grid h x w (the browser averages), as the model's raw values:
// channel c of pixel (y, x) in [0, 255] -> value * max_value / 255, laid out C x H x W.
function pixels(source, channels) {
  const [h, w] = input.grid;
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const context = small.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, w, h);
  const rgba = context.getImageData(0, 0, w, h).data;
  const values = new Array(channels * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const at = (y * w + x) * 4;
      for (let c = 0; c < channels; c++) {
        // One channel: the luma of the pixel (a drawing is white on black, so any channel).
        const v = channels === 1 ? 0.299 * rgba[at] + 0.587 * rgba[at + 1] + 0.114 * rgba[at + 2] : rgba[at + c];
        values[c * h * w + y * w + x] = (Math.round(v) * input.max_value) / 255;
      }
    }
  }
  return values;
}

function drawWidget() {
  const canvas = document.getElementById("try-canvas");
  const context = canvas.getContext("2d");
  const clear = () => {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  context.strokeStyle = "#fff";
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = canvas.width / input.grid[1] * 1.4;
  let drawing = false;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    context.beginPath();
    context.moveTo(...at(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    context.lineTo(...at(event));
    context.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    show(pixels(canvas, input.layout === "image" ? input.shape[0] : 1));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("try-clear").addEventListener("click", () => {
    clear();
    list.replaceChildren();
    status.textContent = say("draw");
  });
}

function uploadWidget() {
  const file = document.getElementById("try-file");
  const drop = document.getElementById("try-drop");
  const preview = document.getElementById("try-preview");
  const take = async (picked) => {
    if (!picked) return;
    try {
      const bitmap = await createImageBitmap(picked);
      preview.getContext("2d").drawImage(bitmap, 0, 0, preview.width, preview.height);
      show(pixels(bitmap, input.shape[0]));
    } catch {
      status.textContent = say("not_an_image", { name: picked.name });
    }
  };
  file.addEventListener("change", () => take(file.files[0]));
  drop.addEventListener("dragover", (event) => event.preventDefault());
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    take(event.dataTransfer.files[0]);
  });
}

// --- points on a plane ------------------------------------------------------------------------
const COLOURS = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];
const BOUNDARY_GRID = 80;

function planeWidget() {
  const canvas = document.getElementById("try-plane");
  const context = canvas.getContext("2d");
  const [x0, x1] = input.plane.x;
  const [y0, y1] = input.plane.y;
  const toPlane = (px, py) => [x0 + (px / canvas.width) * (x1 - x0), y1 - (py / canvas.height) * (y1 - y0)];
  const toCanvas = (x, y) => [((x - x0) / (x1 - x0)) * canvas.width, ((y1 - y) / (y1 - y0)) * canvas.height];
  const points = [];
  let boundary = null;

  function paint() {
    if (boundary) context.drawImage(boundary, 0, 0, canvas.width, canvas.height);
    for (const [x, y, label] of points) {
      const [px, py] = toCanvas(x, y);
      context.beginPath();
      context.arc(px, py, 6, 0, 2 * Math.PI);
      context.fillStyle = `rgb(${COLOURS[label % COLOURS.length].join(",")})`;
      context.fill();
      context.strokeStyle = "#000";
      context.stroke();
    }
  }

  // The model's answer on a grid over the plane, in one batch: each cell coloured by its class,
  // paler where the model is less sure.
  async function drawBoundary() {
    const n = BOUNDARY_GRID;
    const values = [];
    for (let row = 0; row < n; row++) {
      for (let col = 0; col < n; col++) {
        values.push(...toPlane(((col + 0.5) * canvas.width) / n, ((row + 0.5) * canvas.height) / n));
      }
    }
    const rows = await predict(values, n * n);
    const image = new ImageData(n, n);
    rows.forEach((probabilities, i) => {
      const best = probabilities.indexOf(Math.max(...probabilities));
      const colour = COLOURS[best % COLOURS.length];
      const sure = probabilities[best];
      for (let c = 0; c < 3; c++) image.data[i * 4 + c] = Math.round(255 - (255 - colour[c]) * sure * 0.6);
      image.data[i * 4 + 3] = 255;
    });
    boundary = document.createElement("canvas");
    boundary.width = n;
    boundary.height = n;
    boundary.getContext("2d").putImageData(image, 0, 0);
    root.dataset.boundary = "drawn";
    paint();
  }

  canvas.addEventListener("click", async (event) => {
    const box = canvas.getBoundingClientRect();
    const point = toPlane(((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height);
    await show(point);
    const probabilities = window.aulaTry.lastProbabilities;
    if (probabilities) points.push([...point, probabilities.indexOf(Math.max(...probabilities))]);
    paint();
  });
  return drawBoundary().catch((error) => {
    status.textContent = error.message;
  });
}

// --- typed inputs -----------------------------------------------------------------------------
function typedWidget() {
  const form = document.getElementById("try-typed");
  const field = document.getElementById("try-text");
  const error = document.getElementById("try-typed-error");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const words = field.value.trim().split(/[\s,]+/).filter(Boolean);
    let values;
    if (input.widget === "tokens") {
      values = words.map((word) => input.vocabulary.indexOf(word));
      const unknown = words.find((word, i) => values[i] < 0);
      if (unknown !== undefined) {
        error.textContent = say("unknown_token", { token: unknown, vocabulary: input.vocabulary.join(" ") });
        return;
      }
    } else {
      values = words.map(Number);
      const bad = words.find((word, i) => !Number.isFinite(values[i]));
      if (bad !== undefined) {
        error.textContent = say("not_a_number", { value: bad });
        return;
      }
    }
    if (values.length !== perSample) {
      error.textContent = say("wrong_count", { given: values.length, wanted: perSample });
      return;
    }
    error.textContent = "";
    show(values);
  });
}

const widgets = { draw: drawWidget, upload: uploadWidget, plane: planeWidget, numbers: typedWidget, tokens: typedWidget };
Promise.resolve(widgets[input.widget]()).then(() => {
  root.dataset.ready = "true";
});

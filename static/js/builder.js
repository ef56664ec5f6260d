// The model builder: a spec's layers as a list to add to (from a palette of the layer types),
// remove, reorder and edit; after every change the spec goes to the validation endpoint and each
// layer shows its output shape and parameter count, or the problem found on it.
//
// The layer types, their settings and limits come from the spec's JSON Schema (the runtime's
// own tables), so the builder offers exactly what the runtime accepts.
//
//   const builder = mountBuilder(root, { schema, spec, validateUrl, csrfToken, extraBody, words });
//   (extraBody() adds fields to each validation request, e.g. the dataset being chosen;
//   headingLevel: the level of the layers' headings, one below the section holding the builder;
//   words: labels of settings and choices in the user's language, apps/courses/builder.py)
//   builder.spec()      -> the spec as edited
//   builder.onReport(fn) -> fn(report) after each validation

const VALIDATE_DELAY_MS = 250;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function shapeText(shape) {
  return shape && shape.length ? `[${shape.join(", ")}]` : "[]";
}

function countText(n) {
  return Number(n).toLocaleString("en");
}

// What a property of a layer is, from its schema: how to show it and read it back.
function fieldKind(property) {
  if (property.enum) return "choice";
  if (property.anyOf) {
    const types = property.anyOf.map((option) => option.type);
    if (types.includes("integer") && types.includes("array")) return "pair";
  }
  const type = Array.isArray(property.type) ? property.type.filter((t) => t !== "null")[0] : property.type;
  if (type === "integer") return "integer";
  if (type === "number") return "number";
  if (type === "boolean") return "boolean";
  if (type === "array" && property.items && property.items.$ref === "#/$defs/layer") return "layers";
  return "json";
}

function nullable(property) {
  return Array.isArray(property.type) && property.type.includes("null");
}

export function layerTypes(schema) {
  const defs = schema.$defs;
  return defs.layer.oneOf.map((option) => {
    const def = defs[option.$ref.split("/").pop()];
    return { type: def.properties.type.const, title: def.title, description: def.description, def };
  });
}

export function mountBuilder(
  root,
  { schema, spec, validateUrl, csrfToken, extraBody = () => ({}), headingLevel = 3, words = {} },
) {
  const fieldLabels = words.fields || {};
  const choiceLabels = words.choices || {};
  const messages = words.messages || {};
  // A sentence of the page's language with its {placeholders} filled in.
  const say = (key, values = {}) =>
    (messages[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
  const types = layerTypes(schema);
  const byType = Object.fromEntries(types.map((t) => [t.type, t]));
  const state = JSON.parse(JSON.stringify(spec));
  const listeners = [];
  let timer = null;
  let sequence = 0;
  let inFlight = null;
  let lastReport = null;

  const list = element("ol", { class: "layers", id: "layers", "aria-label": say("layers_label") });
  const summary = element("div", { class: "builder-summary", role: "status", "aria-live": "polite" });
  const problems = element("ul", { class: "problems", id: "spec-problems" });
  const training = element("fieldset", { class: "training" });
  root.replaceChildren(
    paletteControl(state.layers, "top"),
    list,
    training,
    summary,
    problems,
  );

  function paletteControl(layers, key) {
    const id = `palette-${key}`;
    const select = element(
      "select",
      { id },
      ...types.map((t) => element("option", { value: t.type, text: t.title, title: t.description })),
    );
    const add = element("button", {
      type: "button",
      class: "add-layer",
      text: key === "top" ? say("add_layer") : say("add_layer_inside"),
      onclick: () => {
        layers.push(newLayer(select.value));
        changed({ focus: `${key === "top" ? "" : key + "."}${layers.length}` });
      },
    });
    return element(
      "div",
      { class: "palette" },
      element("label", { for: id, text: key === "top" ? say("layer_type") : say("layer_type_inside", { block: key }) }),
      select,
      add,
    );
  }

  function newLayer(type) {
    const def = byType[type].def;
    const layer = { type };
    for (const name of def.required || []) {
      if (name === "type") continue;
      const property = def.properties[name];
      const kind = fieldKind(property);
      if (kind === "layers") layer[name] = [{ type: "relu" }];
      else if (kind === "choice") layer[name] = property.enum.find((v) => v !== null);
      else if (kind === "pair" || kind === "integer") layer[name] = Math.max(1, property.minimum ?? 3, 3);
      else if (kind === "number") layer[name] = property.minimum ?? 0.1;
      else if (kind === "boolean") layer[name] = property.default ?? false;
    }
    return layer;
  }

  function labelOf(name, position) {
    return fieldLabels[`${position}.${name}`] || fieldLabels[name] || name.replaceAll("_", " ");
  }

  function fieldFor(layer, name, property, position) {
    const id = `layer-${position.replaceAll(".", "-")}-${name}`;
    const kind = fieldKind(property);
    const value = layer[name];
    const label = element("label", { for: id, text: labelOf(name, position) });
    const hint = element("span", { class: "field-help", id: `${id}-hint`, text: property.description || "" });
    let input;
    const write = (next) => {
      if (next === undefined) delete layer[name];
      else layer[name] = next;
      changed();
    };
    if (kind === "boolean") {
      input = element("input", { type: "checkbox", id, checked: value ?? property.default ?? false });
      input.addEventListener("change", () => write(input.checked));
      return element("div", { class: "field checkbox" }, input, label, hint);
    }
    if (kind === "choice") {
      input = element(
        "select",
        { id },
        ...property.enum.map((option) =>
          element("option", {
            value: option ?? "",
            text: choiceLabels[option ?? ""] || option,
            selected: option === (value ?? property.default ?? null),
          }),
        ),
      );
      input.addEventListener("change", () => write(input.value === "" ? null : input.value));
    } else if (kind === "integer" || kind === "number") {
      input = element("input", {
        type: "number",
        id,
        inputmode: kind === "integer" ? "numeric" : "decimal",
        step: kind === "integer" ? "1" : "any",
        min: property.minimum,
        max: property.maximum,
        value: value ?? "",
        placeholder: nullable(property) ? say("inferred") : property.default ?? "",
      });
      input.addEventListener("input", () => {
        const raw = input.value.trim();
        if (raw === "") write(undefined);
        else write(kind === "integer" ? Number.parseInt(raw, 10) : Number(raw));
      });
    } else if (kind === "pair") {
      input = element("input", {
        type: "text",
        id,
        inputmode: "numeric",
        value: Array.isArray(value) ? value.join(", ") : value ?? "",
        placeholder: property.default !== undefined ? String(property.default) : say("pair_example"),
      });
      input.addEventListener("input", () => {
        const parts = input.value.split(/[\s,x×]+/).filter(Boolean).map((p) => Number(p));
        if (!parts.length) write(undefined);
        else write(parts.length === 1 ? parts[0] : parts);
      });
    } else {
      input = element("input", { type: "text", id, value: value === undefined ? "" : JSON.stringify(value) });
      input.addEventListener("input", () => {
        try {
          write(input.value.trim() === "" ? undefined : JSON.parse(input.value));
        } catch {
          write(input.value);
        }
      });
    }
    input.setAttribute("aria-describedby", `${id}-hint`);
    return element("div", { class: "field" }, label, input, hint);
  }

  function layerItem(layers, index, prefix) {
    const layer = layers[index];
    const position = `${prefix}${index + 1}`;
    const known = byType[layer.type];
    const title = known ? known.title : say("unknown_layer", { type: layer.type });
    const move = (delta) => {
      const [moved] = layers.splice(index, 1);
      layers.splice(index + delta, 0, moved);
      changed({ focus: `${prefix}${index + 1 + delta}` });
    };
    const level = Math.min(6, headingLevel + prefix.split(".").length - 1);
    const heading = element(`h${level}`, { id: `layer-${position}-title`, class: "layer-title", tabindex: "-1" },
      element("span", { class: "layer-index", text: `${position}.` }), ` ${title}`);
    const controls = element(
      "div",
      { class: "layer-controls" },
      element("button", {
        type: "button", text: "↑", disabled: index === 0,
        "aria-label": say("move_up", { position }), onclick: () => move(-1),
      }),
      element("button", {
        type: "button", text: "↓", disabled: index === layers.length - 1,
        "aria-label": say("move_down", { position }), onclick: () => move(1),
      }),
      element("button", {
        type: "button", class: "danger", text: say("remove"),
        "aria-label": say("remove_layer", { position }),
        onclick: () => {
          layers.splice(index, 1);
          changed({ focus: layers.length ? `${prefix}${Math.min(index, layers.length - 1) + 1}` : null });
        },
      }),
    );
    const item = element(
      "li",
      { class: "layer", "data-position": position, "data-type": layer.type, "aria-labelledby": `layer-${position}-title` },
      element("div", { class: "layer-head" }, heading,
        element("span", { class: "layer-report", id: `layer-${position}-report` }), controls),
    );
    if (known) {
      const fields = element("div", { class: "layer-fields" });
      for (const [name, property] of Object.entries(known.def.properties)) {
        if (name === "type") continue;
        if (fieldKind(property) === "layers") {
          if (!Array.isArray(layer[name])) layer[name] = [];
          const inner = element("ol", { class: "layers nested", "aria-label": say("layers_inside", { block: position }) });
          layer[name].forEach((_, innerIndex) => inner.append(layerItem(layer[name], innerIndex, `${position}.`)));
          item.append(inner, paletteControl(layer[name], position));
          continue;
        }
        fields.append(fieldFor(layer, name, property, position));
      }
      item.insertBefore(fields, item.children[1] || null);
    }
    item.append(element("p", { class: "layer-error field-error", id: `layer-${position}-error`, role: "alert", hidden: true }));
    return item;
  }

  function trainingFields() {
    const def = schema.$defs.training;
    const settings = state.training || (state.training = {});
    training.replaceChildren(element("legend", { text: say("training") }));
    for (const name of ["epochs", "batch_size", "loss", "seed"]) {
      if (def.properties[name]) training.append(fieldFor(settings, name, def.properties[name], "training"));
    }
    const optimizer = settings.optimizer || (settings.optimizer = { type: "adam", lr: 0.001 });
    const optimizerDef = schema.$defs.optimizer;
    if (optimizerDef && optimizerDef.properties) {
      const usedBy = optimizerDef["x-used-by"] || {};
      // The type, the learning rate, and the settings only some optimizers take (momentum for
      // SGD and RMSprop) where the chosen one takes them.
      for (const name of ["type", "lr", "momentum", "nesterov"]) {
        if (!optimizerDef.properties[name]) continue;
        if (usedBy[name] && !usedBy[name].includes(optimizer.type)) continue;
        const field = fieldFor(optimizer, name, optimizerDef.properties[name], "optimizer");
        if (name === "type") field.querySelector("select").addEventListener("change", () => optimizerSwitched(optimizer, usedBy));
        training.append(field);
      }
    }
  }

  // Switching optimizers keeps the spec valid: the settings the new one does not take are set
  // aside (and given back when switching to one that takes them again).
  const setAside = {};
  function optimizerSwitched(optimizer, usedBy) {
    for (const [name, users] of Object.entries(usedBy)) {
      if (users.includes(optimizer.type)) {
        if (!(name in optimizer) && name in setAside) optimizer[name] = setAside[name];
      } else if (name in optimizer) {
        setAside[name] = optimizer[name];
        delete optimizer[name];
      }
    }
    trainingFields();
    const select = root.querySelector('[id="layer-optimizer-type"]');
    if (select) select.focus();
  }

  function render() {
    list.replaceChildren(...state.layers.map((_, index) => layerItem(state.layers, index, "")));
    trainingFields();
    if (lastReport) show(lastReport);
  }

  function changed({ focus } = {}) {
    if (focus !== undefined) {
      render();
      const target = focus && root.querySelector(`[id="layer-${focus}-title"]`);
      if (target) target.focus();
    }
    clearTimeout(timer);
    timer = setTimeout(validate, VALIDATE_DELAY_MS);
  }

  async function validate() {
    const mine = ++sequence;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    root.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(validateUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ ...extraBody(), spec: state }),
        credentials: "same-origin",
        signal: inFlight.signal,
      });
      const body = await response.json();
      if (mine !== sequence) return;
      const report = response.ok
        ? body
        : { valid: false, layers: [], problems: [{ path: "spec", layer: null, message: body.error ? body.error.message : say("not_checked") }] };
      lastReport = report;
      show(report);
      for (const listener of listeners) listener(report);
    } catch (error) {
      if (error.name !== "AbortError") {
        summary.textContent = say("no_answer_check");
      }
    } finally {
      if (mine === sequence) root.removeAttribute("aria-busy");
    }
  }

  function show(report) {
    for (const item of root.querySelectorAll("li.layer")) {
      item.classList.remove("has-error");
      const position = item.dataset.position;
      item.querySelector(`[id="layer-${position}-report"]`).textContent = "";
      const error = item.querySelector(`[id="layer-${position}-error"]`);
      error.hidden = true;
      error.textContent = "";
    }
    for (const layer of report.layers || []) {
      const target = root.querySelector(`[id="layer-${layer.position}-report"]`);
      if (target) target.textContent = say("layer_report", { shape: shapeText(layer.output_shape), params: countText(layer.params) });
    }
    problems.replaceChildren();
    for (const problem of report.problems || []) {
      const error = problem.layer && root.querySelector(`[id="layer-${problem.layer}-error"]`);
      if (error) {
        // The runtime names the layer by its type ("layer 3 (maxpool2d)"); show its title.
        const known = byType[error.closest("li.layer").dataset.type];
        const message = known
          ? problem.message.replace(`layer ${problem.layer} (${known.type})`, `layer ${problem.layer} (${known.title})`)
          : problem.message;
        error.hidden = false;
        error.textContent = error.textContent ? `${error.textContent} ${message}` : message;
        error.closest("li.layer").classList.add("has-error");
      } else {
        problems.append(element("li", { class: "field-error", text: problem.message }));
      }
    }
    const count = (report.problems || []).length;
    summary.textContent = report.valid
      ? say("valid", { params: countText(report.total_params), shape: shapeText(report.output_shape) })
      : say(count === 1 ? "problems_one" : "problems_other", { count });
  }

  render();
  validate();
  return {
    spec: () => JSON.parse(JSON.stringify(state)),
    onReport: (listener) => listeners.push(listener),
    report: () => lastReport,
    validateNow: validate,
  };
}

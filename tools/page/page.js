// The drawing page. What it reads is the image in `source` (the pad as a PNG, a file, an
// example), sent to POST /read with the rows the user blanked; the answer is replayed row by
// row. No library, nothing from the network: everything comes from tools/serve.py.
"use strict";

const $ = (id) => document.getElementById(id);
const ROWS = 28;
const LIVE_EVERY = 250; // ms between the answers asked for while a stroke is drawn
const STEP = 70; // ms a row, when the reading is replayed
const RETRIES = 3; // a 503 (the server is busy) is retried after its Retry-After
const BIG_FILE = 2_500_000; // bytes: a larger file is sent as the page shows it, fitted...
const BIG_PICTURE = 4096 * 4096; // ...and so is a picture of more pixels than the server takes
const SENT_SIDE = 1024; // px: the longest side of that fitted copy
const BLUE = getComputedStyle(document.documentElement).getPropertyValue("--blue").trim();

const pad = $("pad");
const pen = pad.getContext("2d", { willReadFrequently: true });
const state = {
  latest: 0, // the newest request: an older answer that arrives late is dropped
  source: null, // the image last read, as a data: URL
  blanked: new Set(), // rows (0-27) the user blanked: what if the model had not seen them?
  answer: null, // the last answer shown
  row: ROWS, // the row the replay shows (1-28)
  timer: null, // the replay's, while it plays
  history: [], // the pad before each change, for undo
  drawn: false, // whether the pad holds anything
  ink: "#000", // the pen's colour: white on a dark picture
  lastLive: 0,
};

// The pad

function blankPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  state.ink = "#000";
}

function remember() {
  const pixels = pen.getImageData(0, 0, pad.width, pad.height);
  state.history.push({ pixels, drawn: state.drawn, ink: state.ink });
  if (state.history.length > 50) state.history.shift();
}

function undo() {
  const last = state.history.pop();
  if (!last) return;
  pen.putImageData(last.pixels, 0, 0);
  Object.assign(state, { drawn: last.drawn, ink: last.ink });
  if (state.drawn) readPad(false);
  else showEmpty();
}

function clearAll() {
  if (state.drawn) remember();
  blankPad();
  state.drawn = false;
  showEmpty();
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  remember();
  pad.setPointerCapture(event.pointerId);
  const [x, y] = at(event);
  pen.fillStyle = pen.strokeStyle = state.ink;
  pen.lineWidth = Number($("pen").value);
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath(); // a tap leaves a dot
  pen.arc(x, y, pen.lineWidth / 2, 0, 2 * Math.PI);
  pen.fill();
  pen.beginPath();
  pen.moveTo(x, y);
  state.drawn = true;
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  pen.lineTo(...at(event));
  pen.stroke();
  const now = performance.now();
  if (now - state.lastLive >= LIVE_EVERY) {
    state.lastLive = now;
    readPad(true);
  }
});
pad.addEventListener("pointerup", () => readPad(false));

function readPad(live) {
  state.source = pad.toDataURL("image/png");
  state.blanked.clear();
  read(live);
}

// Files and examples

$("choose").addEventListener("click", () => $("file").click()); // a button: Tab, Enter
$("file").addEventListener("change", (event) => {
  if (event.target.files.length) readFile(event.target.files[0]);
  event.target.value = "";
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  if (event.dataTransfer.files.length) readFile(event.dataTransfer.files[0]);
});

function readFile(file) {
  const reader = new FileReader();
  reader.onload = () => {
    const picture = new Image();
    picture.onload = () => {
      putOnPad(picture);
      const big = file.size > BIG_FILE || picture.width * picture.height > BIG_PICTURE;
      readImage(big ? fitted(picture, SENT_SIDE) : reader.result);
    };
    picture.onerror = () => readImage(reader.result); // the server says what is wrong
    picture.src = reader.result;
  };
  reader.readAsDataURL(file);
}

function putOnPad(picture) {
  // Fitted on the pad; drawing on it then adds to it, in ink that shows on it.
  remember();
  blankPad();
  const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
  const [w, h] = [picture.width * scale, picture.height * scale];
  pen.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  const pixels = pen.getImageData(0, 0, pad.width, pad.height).data;
  let light = 0;
  for (let i = 0; i < pixels.length; i += 4) light += pixels[i] + pixels[i + 1] + pixels[i + 2];
  state.ink = light / (pixels.length / 4) / 3 < 128 ? "#fff" : "#000";
  state.drawn = true;
}

function fitted(picture, side) {
  const scale = Math.min(1, side / Math.max(picture.width, picture.height));
  const copy = document.createElement("canvas");
  copy.width = Math.round(picture.width * scale);
  copy.height = Math.round(picture.height * scale);
  copy.getContext("2d").drawImage(picture, 0, 0, copy.width, copy.height);
  return copy.toDataURL("image/png");
}

function readImage(url) {
  state.source = url;
  state.blanked.clear();
  read(false);
}

async function loadExamples() {
  let got;
  try {
    got = await (await fetch("/examples")).json();
  } catch {
    got = { examples: [], why: "the server sent no examples" };
  }
  $("examples-why").hidden = !got.why;
  $("examples-why").textContent = got.why || "";
  $("examples").replaceChildren(...got.examples.map(exampleButton));
}

function exampleButton(example) {
  const button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", `example: ${example.note}`);
  button.title = example.note;
  button.classList.toggle("wrong", example.read_as !== null);
  const picture = pixelCanvas(decode(example.image), 28, 28, (v) => [v, v, v]);
  button.append(picture);
  button.addEventListener("click", () => {
    remember();
    pen.imageSmoothingEnabled = false;
    pen.drawImage(picture, 0, 0, pad.width, pad.height);
    pen.imageSmoothingEnabled = true;
    Object.assign(state, { ink: "#fff", drawn: true });
    readImage(picture.toDataURL("image/png"));
  });
  return button;
}

// Asking the server

async function read(live) {
  const mine = ++state.latest;
  document.body.dataset.state = "reading";
  const blank = [...state.blanked].sort((a, b) => a - b);
  const got = await post(JSON.stringify({ image: state.source, blank }));
  if (mine !== state.latest) return;
  if (got.error) showError(got.error);
  else show(got, live);
}

async function post(body) {
  // A full server answers 503, or, when it closes before reading the request, resets the
  // connection: both are tried again, after the Retry-After it asks for (or a second).
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      const headers = { "Content-Type": "application/json" };
      response = await fetch("/read", { method: "POST", headers, body });
    } catch (error) {
      if (attempt >= RETRIES) return { error: `the server did not answer (${error.message})` };
      await pause(1);
      continue;
    }
    if (response.status === 503 && attempt < RETRIES) {
      await pause(Number(response.headers.get("Retry-After")) || 1);
      continue;
    }
    try {
      return await response.json();
    } catch {
      return { error: `the server answered ${response.status}, and no JSON` };
    }
  }
}

function pause(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

// Showing the answer

function showEmpty() {
  state.latest += 1;
  stop();
  Object.assign(state, { answer: null, source: null });
  state.blanked.clear();
  document.body.dataset.state = "empty";
  document.body.classList.remove("unsure");
  for (const id of ["probability", "runner-up", "settled", "error", "announce"]) {
    $(id).textContent = "";
  }
  $("answer").textContent = "–";
  $("notes").replaceChildren();
  $("bars").replaceChildren();
  $("seen-panel").hidden = $("reading").hidden = true;
}

function showError(message) {
  showEmpty();
  document.body.dataset.state = "error";
  $("error").textContent = message;
}

function show(answer, live) {
  stop();
  state.answer = answer;
  $("error").textContent = "";
  document.body.classList.toggle("unsure", !answer.sure);
  $("notes").replaceChildren(...notes(answer).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  $("replay").hidden = answer.rows === null;
  drawRows(answer.rows, answer.why);
  drawSignals(answer);
  drawInfluence(answer);
  $("seen-panel").hidden = $("reading").hidden = false;
  document.body.dataset.state = "read";
  showRow(ROWS);
  if (live) return;
  $("announce").textContent = spoken(answer);
  if (answer.rows && !matchMedia("(prefers-reduced-motion: reduce)").matches) play();
}

function notes(answer) {
  const said = [];
  if (!answer.sure) said.push(`not sure: it may be ${article(answer.runner_up)}`);
  if (answer.touches_edge) said.push("the ink touches the edge: part of the digit may be cut off");
  if (answer.blanked.length) said.push(`read without row${answer.blanked.length > 1 ? "s" : ""} ` +
    answer.blanked.map((r) => r + 1).join(", "));
  return said;
}

function article(digit) {
  return `${digit === 8 ? "an" : "a"} ${digit}`;
}

function spoken(answer) {
  const parts = [`${answer.sure ? "" : "Not sure. "}The answer is ${answer.digit}, ` +
    `probability ${answer.probability.toFixed(2)}.`,
    `Runner-up ${answer.runner_up}, probability ${answer.runner_up_probability.toFixed(2)}.`];
  if (answer.settled) parts.push(`Decided at row ${answer.settled}.`);
  if (answer.touches_edge) parts.push("The ink touches the edge.");
  return parts.join(" ");
}

function showRow(row) {
  state.row = row;
  const answer = state.answer;
  const probabilities = answer.rows ? answer.rows[row - 1] : answer.probabilities;
  const order = probabilities.map((p, digit) => [p, digit]).sort((a, b) => b[0] - a[0]);
  const [[p, guess], [q, second]] = order;
  $("answer").textContent = guess;
  $("probability").textContent = answer.rows
    ? `after row ${row} of ${ROWS}: probability ${p.toFixed(4)}`
    : `probability ${p.toFixed(4)}`;
  $("runner-up").textContent = `runner-up ${second}, probability ${q.toFixed(4)}`;
  $("settled").textContent = answer.settled ? `decided at row ${answer.settled}` : "";
  drawBars(probabilities, guess);
  drawSeen(answer, row);
  $("row").value = row;
  $("row-label").textContent = `row ${row}`;
  $("blank").textContent = `${state.blanked.has(row - 1) ? "Restore" : "Blank"} row ${row}`;
  $("restore").disabled = state.blanked.size === 0;
  for (const line of document.querySelectorAll("#rows tbody tr")) {
    line.classList.toggle("current", Number(line.dataset.row) === row);
  }
}

function drawBars(probabilities, guess) {
  $("bars").replaceChildren(...probabilities.map((p, digit) => {
    const item = document.createElement("li");
    item.dataset.p = p;
    item.classList.toggle("guess", digit === guess);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${100 * p}%`;
    const [name, value] = [document.createElement("span"), document.createElement("span")];
    name.textContent = digit;
    value.className = "value";
    value.textContent = p.toFixed(2);
    item.append(name, bar, value);
    return item;
  }));
}

function drawSeen(answer, row) {
  const pixels = decode(answer.image);
  const seen = $("seen").getContext("2d");
  const image = seen.createImageData(28, 28);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  seen.putImageData(image, 0, 0);
  // Over it: rows not read yet dimmed, the line the reading has reached, the row where it
  // settled, and the rows blanked.
  const overlay = $("overlay").getContext("2d");
  const h = overlay.canvas.height / ROWS;
  overlay.clearRect(0, 0, overlay.canvas.width, overlay.canvas.height);
  overlay.fillStyle = "rgba(255, 255, 255, 0.25)";
  overlay.fillRect(0, row * h, overlay.canvas.width, (ROWS - row) * h);
  overlay.fillStyle = "rgba(255, 190, 0, 0.45)";
  for (const blank of state.blanked) overlay.fillRect(0, blank * h, overlay.canvas.width, h);
  if (answer.settled) {
    overlay.fillStyle = "#2a9d3a";
    overlay.fillRect(0, (answer.settled - 1) * h, 8, h);
  }
  if (answer.rows) {
    overlay.fillStyle = "#e03030";
    overlay.fillRect(0, row * h - 2, overlay.canvas.width, 2);
  }
}

function drawInfluence(answer) {
  // How far the answer's probability falls without each row, the longest bar the largest
  // fall: a sure answer loses little to any one row, and the bars still rank the rows.
  const canvas = $("influence");
  const context = canvas.getContext("2d");
  const h = canvas.height / ROWS;
  const drops = answer.influence.map((p) => Math.max(0, answer.probability - p));
  const largest = Math.max(...drops);
  context.clearRect(0, 0, canvas.width, canvas.height);
  drops.forEach((drop, row) => {
    context.fillStyle = "#eee";
    context.fillRect(0, row * h + 1, canvas.width, h - 2);
    context.fillStyle = `rgb(${BLUE})`;
    context.fillRect(0, row * h + 1, largest > 0 ? drop / largest * canvas.width : 0, h - 2);
  });
  $("largest").textContent = largest.toFixed(largest < 0.01 ? 4 : 2);
  const most = drops.map((drop, row) => [drop, row]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  canvas.setAttribute("aria-label", "without a row, the answer's probability falls most for " +
    most.map(([drop, row]) => `row ${row + 1} (by ${drop.toFixed(2)})`).join(", "));
}

function drawRows(rows, why) {
  const body = document.querySelector("#rows tbody");
  body.replaceChildren();
  $("rows").hidden = rows === null;
  $("why").hidden = rows !== null;
  $("why").textContent = why || "";
  if (rows === null) return;
  rows.forEach((probabilities, index) => {
    const line = body.insertRow();
    const guess = probabilities.indexOf(Math.max(...probabilities));
    Object.assign(line.dataset, { row: index + 1, guess });
    cell(line, index + 1, "row");
    for (const p of probabilities) {
      const shade = cell(line, p >= 0.005 ? Math.round(100 * p) : "", "p");
      shade.style.background = `rgba(${BLUE}, ${0.8 * p})`; // black text stays readable
    }
    cell(line, guess, "guess");
  });
}

function cell(line, text, kind) {
  const td = line.insertCell();
  td.className = kind;
  td.textContent = text;
  return td;
}

function drawSignals(answer) {
  $("cell-caption").textContent = `the ${answer.cell} cell at each row: its ${answer.units} units`;
  $("signals").replaceChildren(...Object.entries(answer.signals).map(([name, encoded]) => {
    const [lo, hi] = answer.signal_ranges[name];
    const colour = name.endsWith("gate") ? gate : (v) => diverging(lo + (hi - lo) * v / 255);
    const canvas = pixelCanvas(decode(encoded), answer.units, ROWS, colour);
    canvas.dataset.signal = name;
    canvas.style.width = `${answer.units}px`;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${name}: ${ROWS} rows by ${answer.units} units`);
    const figure = document.createElement("div");
    figure.className = "signal";
    const label = document.createElement("p");
    label.textContent = name;
    figure.append(label, canvas);
    return figure;
  }));
}

function gate(q) { // 0..255 for 0..1: white to blue
  const t = q / 255;
  return [255 - 224 * t, 255 - 160 * t, 255 - 64 * t];
}

function diverging(t) { // -1..1: red, white, blue
  return t >= 0 ? [255 - 224 * t, 255 - 160 * t, 255 - 64 * t]
    : [255 - 32 * -t, 255 - 200 * -t, 255 - 200 * -t];
}

function pixelCanvas(values, width, height, colour) {
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = [width, height];
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  values.forEach((v, i) => image.data.set([...colour(v), 255], 4 * i));
  context.putImageData(image, 0, 0);
  return canvas;
}

function decode(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// The replay, and what if a row were blank

function play() {
  stop();
  if (state.row >= ROWS) showRow(1);
  $("play").textContent = "Pause";
  state.timer = setInterval(() => (state.row >= ROWS ? stop() : showRow(state.row + 1)), STEP);
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
  $("play").textContent = "Play";
}

function toggleRow(index) {
  if (state.blanked.has(index)) state.blanked.delete(index);
  else state.blanked.add(index);
  read(false);
}

$("play").addEventListener("click", () => (state.timer ? stop() : play()));
$("back").addEventListener("click", () => { stop(); showRow(Math.max(1, state.row - 1)); });
$("forward").addEventListener("click", () => { stop(); showRow(Math.min(ROWS, state.row + 1)); });
$("row").addEventListener("input", (event) => { stop(); showRow(Number(event.target.value)); });
$("blank").addEventListener("click", () => toggleRow(state.row - 1));
$("restore").addEventListener("click", () => { state.blanked.clear(); read(false); });
$("seen").addEventListener("click", (event) => {
  const box = event.target.getBoundingClientRect();
  toggleRow(Math.min(ROWS - 1, Math.floor((event.clientY - box.top) / box.height * ROWS)));
});
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clearAll();
  else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  }
});

blankPad();
showEmpty();
loadExamples();

// The drawing page: the pad sends its PNG to POST /read after every stroke, a dropped or
// chosen file is sent as it is, and the answer is drawn. No library, nothing from the network.
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
let latest = 0; // the newest request: an older answer that arrives late is dropped

function blank() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
}

function clearAll() {
  blank();
  latest += 1;
  document.body.dataset.state = "empty";
  document.getElementById("answer").textContent = "–";
  document.getElementById("probability").textContent = "";
  document.getElementById("error").textContent = "";
  document.getElementById("reading").hidden = true;
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  pen.strokeStyle = "#000";
  pen.lineWidth = 20;
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(...at(event));
  pen.lineTo(...at(event)); // a tap leaves a dot
  pen.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  pen.lineTo(...at(event));
  pen.stroke();
});
pad.addEventListener("pointerup", () => send(pad.toDataURL("image/png")));

document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("file").addEventListener("change", (event) => {
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
    showOnPad(reader.result);
    send(reader.result);
  };
  reader.readAsDataURL(file);
}

function showOnPad(url) {
  // The dropped picture, fitted on the pad; drawing on it then adds to it.
  const picture = new Image();
  picture.onload = () => {
    blank();
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const [w, h] = [picture.width * scale, picture.height * scale];
    pen.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  };
  picture.src = url;
}

async function send(url) {
  const mine = ++latest;
  document.body.dataset.state = "reading";
  let answer;
  try {
    const response = await fetch("/read", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: url }),
    });
    answer = await response.json();
  } catch (error) {
    answer = { error: `the server did not answer (${error.message})` };
  }
  if (mine !== latest) return;
  if (answer.error) showError(answer.error);
  else show(answer);
}

function showError(message) {
  document.body.dataset.state = "error";
  document.getElementById("answer").textContent = "–";
  document.getElementById("probability").textContent = "";
  document.getElementById("error").textContent = message;
  document.getElementById("reading").hidden = true;
}

function show(answer) {
  document.getElementById("answer").textContent = answer.digit;
  const p = answer.probabilities[answer.digit];
  document.getElementById("probability").textContent = `probability ${p.toFixed(4)}`;
  document.getElementById("error").textContent = "";
  drawSeen(answer.image);
  drawRows(answer.rows, answer.why);
  drawSignals(answer);
  document.getElementById("reading").hidden = false;
  document.body.dataset.state = "read";
}

function drawSeen(image) {
  const seen = document.getElementById("seen").getContext("2d");
  const pixels = seen.createImageData(28, 28);
  image.flat().forEach((value, i) => {
    pixels.data.set([value, value, value, 255], 4 * i);
  });
  seen.putImageData(pixels, 0, 0);
}

function drawRows(rows, why) {
  const body = document.querySelector("#rows tbody");
  body.replaceChildren();
  document.getElementById("rows").hidden = rows === null;
  document.getElementById("why").hidden = rows !== null;
  document.getElementById("why").textContent = why || "";
  if (rows === null) return;
  rows.forEach((probabilities, index) => {
    const line = body.insertRow();
    const guess = probabilities.indexOf(Math.max(...probabilities));
    line.dataset.guess = guess;
    cell(line, index + 1, "row");
    probabilities.forEach((p, digit) => {
      const shade = cell(line, "", "p");
      shade.style.background = `rgba(31, 95, 191, ${p})`;
      shade.title = `after row ${index + 1}: ${digit} with probability ${p.toFixed(4)}`;
    });
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
  document.getElementById("cell-caption").textContent =
    `the ${answer.cell} cell at each row: its ${answer.units} units`;
  const maps = document.getElementById("signals");
  maps.replaceChildren();
  for (const [name, values] of Object.entries(answer.signals)) {
    const figure = document.createElement("div");
    figure.className = "signal";
    const canvas = document.createElement("canvas");
    canvas.width = values[0].length;
    canvas.height = values.length;
    canvas.dataset.signal = name;
    paint(canvas, values, name.endsWith("gate"));
    const label = document.createElement("p");
    label.textContent = name;
    figure.append(label, canvas);
    maps.append(figure);
  }
}

function paint(canvas, values, gate) {
  // Gates 0..1: white to blue. State -1..1: red, white, blue.
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(canvas.width, canvas.height);
  values.flat().forEach((v, i) => {
    const t = Math.max(-1, Math.min(1, v));
    const [r, g, b] = gate || t >= 0
      ? [255 - 224 * Math.abs(t), 255 - 160 * Math.abs(t), 255 - 64 * Math.abs(t)]
      : [255 - 32 * -t, 255 - 200 * -t, 255 - 200 * -t];
    pixels.data.set([r, g, b, 255], 4 * i);
  });
  context.putImageData(pixels, 0, 0);
}

clearAll();

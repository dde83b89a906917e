// The page: runs into the selects and table; a photo or a drawing to /api/predict.
"use strict";

const $ = (id) => document.getElementById(id);
let runs = [];

function option(run) {
  const o = document.createElement("option");
  o.value = run.name;
  o.textContent = `${run.name} — ${run.model}, ${run.dataset}, ${(run.accuracy * 100).toFixed(1)}%`;
  return o;
}

// The runs into the selects and the table; read again (refresh), each select keeps the run chosen in it.
async function loadRuns() {
  runs = await getJSON("/api/runs");
  $("no-runs").hidden = runs.length > 0;  // an empty page said nothing until Predict was pressed
  const usable = runs.filter((r) => !r.damaged);
  const chosen = [$("run-select"), $("compare-a"), $("compare-b")].map((select) => [select, select.value]);
  for (const [select] of chosen) select.replaceChildren(...usable.map(option));
  const first = usable.findIndex((r) => r.default);
  if (first >= 0) $("run-select").selectedIndex = first;
  if (usable.length > 1) $("compare-b").selectedIndex = 1;
  for (const [select, value] of chosen) {
    if (usable.some((r) => r.name === value)) select.value = value;
  }
  const headers = [...document.querySelectorAll("#runs-table thead th")].map((th) => th.textContent);
  const rows = runs.map((r) => {
    const tr = document.createElement("tr");
    const cells = r.damaged
      ? [r.name, `damaged: ${r.damaged}`]
      : [r.name, r.dataset, r.model, r.accuracy.toFixed(4), r.macro_f1.toFixed(4),
         r.fit_seconds.toFixed(2), r.created.replace("T", " ").slice(0, 16)];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (!r.damaged) td.dataset.label = headers[i];  // shown before the value where rows become cards (phones)
      if (r.damaged && i === 1) td.colSpan = 7;
      if (!r.damaged && i >= 3 && i <= 5) td.className = "num";
      tr.appendChild(td);
    });
    if (!r.damaged) {
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(r.name)}/report.html`;
      link.textContent = "report";
      link.setAttribute("aria-label", `report of ${r.name}`);  // five links read "report" alone
      const td = document.createElement("td");
      td.appendChild(link);
      tr.appendChild(td);
    }
    return tr;
  });
  document.querySelector("#runs-table tbody").replaceChildren(...rows);
}

// A run trained over (--overwrite) or deleted while the page is open: the runs are read again, and the chosen
// run's mistakes where it is another run now (the select, the table and the panel showed the old model's).
async function refresh() {
  const name = $("run-select").value;
  const before = runs.find((r) => r.name === name);
  await loadRuns();
  const now = runs.find((r) => r.name === $("run-select").value);
  if (!now || !before || now.name !== name || now.created !== before.created) loadMistakes();
}

// The tab shown again: runs may have been trained or deleted meanwhile.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh().catch(() => {});  // the page shows what it showed
});

// One part of the result at a time: "pending" (its text), "error" (its text) or "answer".
function showResult(part, text) {
  $("result").hidden = false;
  for (const id of ["pending", "error", "answer"]) $(id).hidden = id !== part;
  $("announcement").textContent = "";  // the answer's line, said again where the next one is shown
  if (text !== undefined) $(part).textContent = text;
}

function showError(message) {
  showResult("error", message);
}

function showAnswer(answer) {
  showResult("answer");
  $("predicted-class").textContent = answer.class;
  $("predicted-by").textContent = `by ${answer.run}`;
  $("announcement").textContent = `Prediction: ${answer.class} (${(answer.probabilities[answer.class] * 100).toFixed(1)}%) ` +
    `by ${answer.run}`;
  // How the photo became the input: a failure is usually visible here (a shadow taken for the object).
  $("steps").replaceChildren(...answer.steps.map((step) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = step.image;
    img.alt = step.title;
    const caption = document.createElement("figcaption");
    caption.textContent = step.title;
    figure.append(img, caption);
    return figure;
  }));
  $("notes").replaceChildren(...answer.notes.map((note) => {
    const li = document.createElement("li");
    li.textContent = note;
    return li;
  }));
  $("explanation-image").closest("figure").hidden = !answer.explanation_png;  // its caption too
  if (answer.explanation_png) $("explanation-image").src = answer.explanation_png;
  $("top-classes").replaceChildren(...answer.top.map((t) => {
    const li = document.createElement("li");
    li.textContent = `${t.class} ${(t.probability * 100).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, t.probability * 150)}px`;
    li.appendChild(bar);
    return li;
  }));
}

// Only the latest request's answer is shown: a slow upload's, arriving after a drawing's, would replace it.
let latestPrediction = 0;

async function predict(blob, filename) {
  const request = ++latestPrediction;
  const run = $("run-select").value;
  const form = new FormData();
  form.append("file", blob, filename);
  if (run) form.append("run", run);
  const what = filename === "drawing.png" ? "the drawing" : filename;
  showResult("pending", `Predicting ${what}${run ? ` with ${run}` : ""}…`);
  try {
    const answer = await getJSON("/api/predict", { method: "POST", body: form });
    if (request === latestPrediction) showAnswer(answer);
    // predicted by a run the page does not list as such: trained over since the page read the runs
    const listed = runs.find((r) => r.name === answer.run);
    if (!listed || listed.created !== answer.created) refresh().catch(() => {});
  } catch (error) {
    if (request === latestPrediction) showError(error.message);
    if (error.status === 404) refresh().catch(() => {});  // the run was deleted: gone from the select too
  }
}

// Upload: a button (reached by the keyboard too), and drag-and-drop.
$("choose-file").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";  // the same file chosen again is predicted again
  if (file) predict(file, file.name);
});
// A file dropped anywhere on the page is taken (beside the box, the browser would open it in the page's
// place); what is dropped on the box is always answered: one file is predicted, several or none said so.
const zone = $("drop-zone");
const takesDrop = (e) => zone.contains(e.target) || e.dataTransfer.types.includes("Files");
document.addEventListener("dragover", (e) => {
  if (!takesDrop(e)) return;
  e.preventDefault();
  zone.classList.toggle("over", zone.contains(e.target));
});
zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) zone.classList.remove("over"); });
document.addEventListener("drop", (e) => {
  if (!takesDrop(e)) return;
  e.preventDefault();
  zone.classList.remove("over");
  const files = e.dataTransfer.files;
  if (!zone.contains(e.target)) $("try").scrollIntoView({ block: "start" });  // where the answer will show
  if (files.length === 1) predict(files[0], files[0].name);
  else if (files.length > 1) showError(`Drop one image at a time: ${files.length} files were dropped.`);
  else showError("What was dropped is not a file (a link, or a picture from another page?): " +
                 "save the image, then drop the file.");
});

// Drawing: dark strokes on white, like ink on paper; the server's photo
// conversion inverts and centres it exactly as it does for photos.
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
let inked = false;  // whether anything is drawn: a white canvas is said so here, without a request
function clearCanvas() {
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  inked = false;
}
clearCanvas();
// One stroke at a time, by the pointer that began it: a second finger (a thumb, a palm) drew its own lines
// into it, the right button drew, and a stroke the browser cancelled (a system gesture) never ended.
let stroke = null;  // the pointerId drawing, or null
function point(e) {
  const rect = canvas.getBoundingClientRect();
  return [(e.clientX - rect.left) * canvas.width / rect.width, (e.clientY - rect.top) * canvas.height / rect.height];
}
canvas.addEventListener("pointerdown", (e) => {
  if (!e.isPrimary || e.button !== 0) return;  // a new primary pointer: the last one has gone
  stroke = e.pointerId;
  inked = true;
  canvas.setPointerCapture(e.pointerId);
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "black";
  ctx.beginPath();
  ctx.moveTo(...point(e));
  ctx.lineTo(...point(e));  // a tap alone is a dot
  ctx.stroke();
});
canvas.addEventListener("pointermove", (e) => {
  if (e.pointerId !== stroke) return;
  ctx.lineTo(...point(e));
  ctx.stroke();
});
for (const end of ["pointerup", "pointercancel", "lostpointercapture"]) {
  canvas.addEventListener(end, (e) => { if (e.pointerId === stroke) stroke = null; });
}
$("clear-drawing").addEventListener("click", clearCanvas);
$("predict-drawing").addEventListener("click", () => {
  if (!inked) {
    latestPrediction++;  // an answer on its way is not this
    showError("Draw something first: the drawing area is empty.");
    return;
  }
  canvas.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
});

// The comparison's answer, or its failure as an alert.
function showComparison(text, failed) {
  $("compare-result").hidden = failed;
  $("compare-error").hidden = !failed;
  $(failed ? "compare-error" : "compare-result").replaceChildren(...text);
}

$("compare-button").addEventListener("click", async () => {
  const a = $("compare-a").value, b = $("compare-b").value;
  if (!a || !b) {  // no run at all: the server would answer with its form checks' words ("a: Field required")
    showComparison(["No runs to compare yet: train two (mnistlab train …)."], true);
    return;
  }
  showComparison([`Comparing ${b} with ${a}…`], false);
  try {
    const form = new FormData();
    form.append("a", a);
    form.append("b", b);
    const result = await getJSON("/api/compare", { method: "POST", body: form });
    const pair = result.pairs[0];
    const link = document.createElement("a");
    link.href = result.report;
    link.textContent = "Full comparison";
    showComparison([`${pair.b} vs ${pair.a}: accuracy ${(pair.accuracy_delta * 100).toFixed(2)} points, ` +
                    `McNemar p = ${pair.p_value.toPrecision(3)} (${pair.significant ? "significant" : "not significant"}). `,
                    link], false);
  } catch (error) {
    showComparison([error.message], true);
  }
});

// Where the chosen run's model is wrong: its top losses (click one for its explanation) and calibration.
// The last run chosen is shown, or nothing: never another run's, under its name.
let latestMistakes = 0;

async function loadMistakes() {
  const request = ++latestMistakes;
  const name = $("run-select").value;
  const status = $("mistakes-status");
  $("loss-detail").hidden = true;
  $("top-losses").replaceChildren();
  $("calibration-text").textContent = "";
  $("reliability-image").hidden = true;
  if (!name) return;
  status.textContent = `Loading ${name}…`;
  try {
    const answer = await getJSON(`/api/runs/${encodeURIComponent(name)}/mistakes`);
    if (request !== latestMistakes) return;  // another run was chosen meanwhile
    status.textContent = "";
    $("top-losses").replaceChildren(...answer.top_losses.map((loss) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "loss";
      button.title = `predicted ${loss.predicted_class}, true ${loss.true_class}`;
      const img = document.createElement("img");
      img.src = loss.image_png;
      img.alt = `test image ${loss.index}: predicted ${loss.predicted_class}, true ${loss.true_class}`;
      const label = document.createElement("span");
      label.textContent = `${loss.predicted_class} / ${loss.true_class}`;
      button.append(img, label);
      button.addEventListener("click", () => showLoss(loss, answer.explanation_method));
      return button;
    }));
    const c = answer.calibration;
    $("calibration-text").textContent =
      `Expected calibration error ${c.ece.toFixed(3)} (${c.ece_binning}), Brier score ${c.brier.toFixed(3)}.`;
    $("reliability-image").src = answer.reliability_png;
    $("reliability-image").hidden = false;
  } catch (error) {
    if (request === latestMistakes) status.textContent = `${name}: ${error.message}`;
  }
}

function showLoss(loss, method) {
  $("loss-detail").hidden = false;
  $("loss-image").src = loss.image_png;
  $("loss-caption").textContent = `Test image ${loss.index}: predicted ${loss.predicted_class}, ` +
    `true ${loss.true_class} (given ${(loss.p_true * 100).toFixed(1)}%)`;
  $("loss-explanation").src = loss.explanation_png;
  $("loss-why").textContent = `Why ${loss.predicted_class} (${method}): blue pixels for, red against`;
}

$("run-select").addEventListener("change", () => {
  latestPrediction++;  // an answer on its way, or shown, is the other run's
  $("result").hidden = true;
  loadMistakes();
});

loadRuns().then(loadMistakes).catch((error) => showError(error.message));

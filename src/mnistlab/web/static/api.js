// The API reference, drawn from /openapi.json by this page alone: FastAPI's own /docs loads Swagger UI
// from a CDN and stays blank on a machine without internet.
"use strict";

// The descriptions are the docstrings' Markdown: `code` is shown as code, the rest as plain text (never HTML).
function fill(node, text) {
  String(text).split("`").forEach((part, i) => {
    if (!part) return;
    if (i % 2) {
      const code = document.createElement("code");
      code.textContent = part;
      node.append(code);
    } else {
      node.append(part);
    }
  });
}

function element(tag, text, className) {
  const e = document.createElement(tag);
  if (text) fill(e, text);
  if (className) e.className = className;
  return e;
}

function resolved(spec, schema) {
  return schema && schema.$ref ? spec.components.schemas[schema.$ref.split("/").pop()] : schema || {};
}

// A field's type in words: "string", "file", "list of Step", "string or null".
function typeOf(spec, schema) {
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map((s) => typeOf(spec, s)).join(" or ");
  if (schema.format === "binary" || schema.contentMediaType) return "file";
  if (schema.type === "array") return `list of ${typeOf(spec, schema.items || {})}`;
  return schema.type || "any";
}

const PLACES = {"multipart/form-data": "form (multipart)", "application/x-www-form-urlencoded": "form"};

function table(titles, rows) {
  const table = element("table");
  const head = table.createTHead().insertRow();
  for (const title of titles) head.append(element("th", title));
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const value of row) fill(tr.insertCell(), value);
  }
  const wrap = element("div", "", "table-wrap");
  wrap.append(table);
  return wrap;
}

function endpoint(spec, path, method, operation) {
  const section = element("section");
  section.append(element("h2", `${method.toUpperCase()} ${path}`));
  if (operation.summary) section.append(element("p", operation.summary));
  if (operation.description) section.append(element("p", operation.description, "hint"));
  const rows = (operation.parameters || []).map((p) => [
    p.name, p.in, typeOf(spec, p.schema || {}), p.required ? "yes" : "no", p.description || ""]);
  for (const [mediaType, content] of Object.entries((operation.requestBody || {}).content || {})) {
    const schema = resolved(spec, content.schema);
    const required = new Set(schema.required || []);
    for (const [name, field] of Object.entries(schema.properties || {})) {
      rows.push([name, PLACES[mediaType] || mediaType, typeOf(spec, field), required.has(name) ? "yes" : "no",
                 field.description || ""]);
    }
  }
  if (rows.length) section.append(table(["field", "in", "type", "required", "description"], rows));
  const answers = element("ul");
  for (const [status, response] of Object.entries(operation.responses || {})) {
    const schema = ((response.content || {})["application/json"] || {}).schema;
    answers.append(element("li", `${status}: ${response.description}${schema ? ` (${typeOf(spec, schema)})` : ""}`));
  }
  section.append(answers);
  return section;
}

// An answer's (or a form's) fields, for the endpoints that name it.
function model(spec, name, schema) {
  const section = element("section");
  section.append(element("h2", name));
  if (schema.description) section.append(element("p", schema.description));
  const required = new Set(schema.required || []);
  const rows = Object.entries(schema.properties || {}).map(([field, s]) => [
    field, typeOf(spec, s), required.has(field) ? "yes" : "no", s.description || ""]);
  section.append(table(["field", "type", "always", "description"], rows));
  return section;
}

async function main() {
  try {
    const spec = await getJSON("/openapi.json").catch((error) => {
      throw new Error(`/openapi.json: ${error.message}`);
    });
    const sections = [element("p", spec.info.description || "")];
    for (const [path, operations] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        sections.push(endpoint(spec, path, method, operation));
      }
    }
    for (const [name, schema] of Object.entries((spec.components || {}).schemas || {})) {
      sections.push(model(spec, name, schema));
    }
    document.getElementById("endpoints").replaceChildren(...sections);
  } catch (error) {
    const shown = document.getElementById("error");
    shown.textContent = error.message;
    shown.hidden = false;
  }
}

main();

// Live updates for portal pages over /ws/v1/ (protocol: docs/websocket.md).
//
// A page declares what it wants in markup, so templates stay server-rendered and work without
// JavaScript; this script only keeps them current:
//   <table data-live-table="orders" data-live-key="id">  rows from the `account` stream
//     <template> a <tr> whose cells carry data-field="symbol" (and data-format="num|time",
//     data-lookup="strategy" to show a name from the page's #live-names JSON) </template>
//   <span data-live-market="BTC" data-live-field="ticker.price">  a value from market.<symbol>
//   <span data-live-strategy-status="<uuid>">  a strategy's status from `account` events
// The socket signs in with the portal session cookie (same origin). After a disconnect it
// reconnects with the last `seq` of each stream, so nothing published meanwhile is missed.
(function () {
  "use strict";

  const ACCOUNT_TABLES = { order: "orders", position: "positions", fill: "fills" };
  const lastSeq = {};
  let socket = null;
  let retryMs = 500;

  function pick(obj, path) {
    return path.split(".").reduce((value, key) => (value == null ? value : value[key]), obj);
  }

  function formatValue(value, format) {
    if (value === null || value === undefined || value === "") return "–";
    if (format === "time") {
      const date = new Date(value);
      return isNaN(date) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19);
    }
    if (format === "num") {
      const text = String(value);
      return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
    }
    if (format === "money") {
      const number = Number(value);
      return isNaN(number) ? String(value) : number.toFixed(2);
    }
    return String(value);
  }

  // <script type="application/json" id="live-names">{"strategy": {"<uuid>": "name"}}</script>
  // names the ids a row carries: a cell with data-lookup="strategy" shows the name, not the id.
  let names = null;
  function lookup(kind, value) {
    if (names === null) {
      const node = document.getElementById("live-names");
      try { names = node ? JSON.parse(node.textContent) : {}; } catch (e) { names = {}; }
    }
    return value == null ? value : ((names[kind] || {})[String(value)] ?? value);
  }

  function renderRow(table, item) {
    const template = table.querySelector("template");
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.id = item[table.dataset.liveKey || "id"];
    row.querySelectorAll("[data-field]").forEach((cell) => {
      let value = pick(item, cell.dataset.field);
      if (cell.dataset.lookup) value = lookup(cell.dataset.lookup, value);
      cell.textContent = formatValue(value, cell.dataset.format);
    });
    return row;
  }

  function tableBody(table) {
    return table.tBodies[0] || table.appendChild(document.createElement("tbody"));
  }

  function showTable(table) {
    const section = table.closest("[data-live-section]");
    if (!section) return;
    const empty = section.querySelector("[data-live-empty]");
    const hasRows = tableBody(table).rows.length > 0;
    table.hidden = !hasRows;
    if (empty) empty.hidden = hasRows;
  }

  function upsert(table, item) {
    const body = tableBody(table);
    const key = String(item[table.dataset.liveKey || "id"]);
    const existing = Array.from(body.rows).find((row) => row.dataset.id === key);
    const keep = table.dataset.liveKeepIf;
    if (keep && !pick(item, keep)) {
      if (existing) existing.remove();
    } else if (existing) {
      existing.replaceWith(renderRow(table, item));
    } else {
      body.insertBefore(renderRow(table, item), body.firstChild);
      const limit = Number(table.dataset.liveLimit || 0);
      while (limit && body.rows.length > limit) body.deleteRow(body.rows.length - 1);
    }
    showTable(table);
  }

  function replaceAll(table, items) {
    const body = tableBody(table);
    body.replaceChildren(...items.map((item) => renderRow(table, item)));
    showTable(table);
  }

  function onAccount(message) {
    if (message.type === "snapshot") {
      Object.entries(message.data || {}).forEach(([part, items]) => {
        if (!Array.isArray(items)) return;
        document.querySelectorAll(`[data-live-table="${part}"][data-live-snapshot]`).forEach(
          (table) => replaceAll(table, items),
        );
      });
      return;
    }
    const tableName = ACCOUNT_TABLES[message.type];
    if (tableName) {
      document.querySelectorAll(`[data-live-table="${tableName}"]`).forEach((table) =>
        upsert(table, message.data),
      );
    }
    if (message.type === "strategy" && message.data) {
      document
        .querySelectorAll(`[data-live-strategy-status="${message.data.id}"]`)
        .forEach((node) => {
          node.textContent = message.data.status_display || message.data.status;
        });
    }
    document.dispatchEvent(new CustomEvent("tandem:account", { detail: message }));
  }

  function onMarket(symbol, message) {
    const updates = message.type === "snapshot" ? message.data || {} : { [message.type]: message.data };
    document.querySelectorAll(`[data-live-market="${symbol}"]`).forEach((node) => {
      const value = pick(updates, node.dataset.liveField);
      if (value !== undefined && value !== null) {
        node.textContent = formatValue(value, node.dataset.format || "num");
      }
    });
    document.dispatchEvent(new CustomEvent("tandem:market", { detail: { symbol, message } }));
  }

  function wantedStreams() {
    const streams = new Set();
    if (document.querySelector("[data-live-table], [data-live-strategy-status]")) {
      streams.add("account");
    }
    document.querySelectorAll("[data-live-market]").forEach((node) => {
      streams.add(`market.${node.dataset.liveMarket}`);
    });
    return Array.from(streams);
  }

  function setStatus(state) {
    document.querySelectorAll("[data-live-status]").forEach((node) => {
      node.dataset.liveStatus = state;
      node.textContent = state === "live" ? "Live" : "Reconnecting…";
    });
  }

  function connect() {
    const streams = wantedStreams();
    if (!streams.length || !window.WebSocket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/v1/`);
    socket.addEventListener("open", () => {
      retryMs = 500;
      setStatus("live");
      streams.forEach((stream) => {
        const request = { op: "subscribe", stream };
        if (lastSeq[stream] !== undefined) request.since = lastSeq[stream];
        socket.send(JSON.stringify(request));
      });
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!message.stream || message.seq === undefined) return;
      lastSeq[message.stream] = message.seq;
      if (message.stream === "account") onAccount(message);
      else if (message.stream.startsWith("market.")) onMarket(message.stream.slice(7), message);
    });
    socket.addEventListener("close", (event) => {
      setStatus("offline");
      if (event.code === 4401 || event.code === 4403) return; // signed out: do not hammer
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", connect);
  else connect();
})();

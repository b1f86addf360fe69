// Draws each <div data-chart=KIND data-key=PATH> from the page's JSON payload with the local plotly.js.
(function () {
  "use strict";
  const CLASS_LABELS = {
    input_tokens_cost_usd: "input (uncached)",
    cache_read_tokens_cost_usd: "cache read",
    cache_write_5m_tokens_cost_usd: "cache write 5m",
    cache_write_1h_tokens_cost_usd: "cache write 1h",
    output_tokens_cost_usd: "output",
    web_search_cost_usd: "web searches",
    request_fees_usd: "request fees",
  };
  const MIX = ["input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens"];
  const LAYOUT = {
    margin: { t: 10, r: 10, b: 50, l: 60 }, barmode: "stack", legend: { orientation: "h" },
    xaxis: { automargin: true }, yaxis: { automargin: true },
  };
  const CONFIG = { displaylogo: false, responsive: true };

  function get(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }
  const label = (v) => (v == null ? "(unattributed)" : String(v));

  const DRAW = {
    daily(rows) {
      const days = rows.map((r) => r.day);
      return Object.keys(CLASS_LABELS).map((c) => ({
        type: "bar", name: CLASS_LABELS[c], x: days, y: rows.map((r) => r[c]),
      }));
    },
    bar(rows) {
      return [{ type: "bar", x: rows.map((r) => label(r.name)), y: rows.map((r) => r.cost_usd), name: "cost, USD" }];
    },
    mix(rows) {
      return MIX.map((c) => ({
        type: "bar", orientation: "h", name: c.replace("_tokens", "").replace(/_/g, " "),
        y: rows.map((r) => label(r.name)), x: rows.map((r) => (r.token_mix ? r.token_mix[c] : null)),
      }));
    },
    cache(rows) {
      return [{ type: "bar", x: rows.map((r) => label(r.name)), y: rows.map((r) => r.cache_hit_rate), name: "cache hit rate" }];
    },
    shadow(rows) {
      return [{ type: "bar", x: rows.map((r) => r.pool), y: rows.map((r) => r.shadow_price_usd_per_accelerator_hour), name: "USD per accelerator-hour" }];
    },
  };

  function draw() {
    const node = document.getElementById("payload");
    if (!node || typeof Plotly === "undefined") return;
    const payload = JSON.parse(node.textContent || "{}");
    document.querySelectorAll("[data-chart]").forEach((el) => {
      const rows = get(payload, el.dataset.key) || [];
      const make = DRAW[el.dataset.chart];
      if (!make || rows.length === 0) {
        el.classList.add("empty");
        el.textContent = "No data to chart yet.";
        return;
      }
      // plotly writes into the layout it is given (axis types...): every chart gets its own copy
      const layout = JSON.parse(JSON.stringify(LAYOUT));
      Plotly.newPlot(el, make(rows), layout, CONFIG).then(() => el.setAttribute("data-rendered", "true"));
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();

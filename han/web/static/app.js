/* han live page: power now from server-sent events, hours, days and the capacity tariff from the API.
   No outside resources; the charts are SVG drawn here.  Every figure carries its raw value in a data
   attribute (data-w, data-kwh, ...) so tests read numbers, not formatted text. */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const GAP_MS = 10000; // at most one refresh of the stored figures per 10 s
  const PERIODIC_MS = 60000; // and one a minute without pushes (the hour moves on)
  const S = {
    meter: null, meters: new Map(), ports: [], skew: 0, auth: false, es: null, retry: 0, down: false,
    lastRefresh: 0, timer: null, busy: false, again: false,
  };
  try { S.meter = localStorage.getItem("han.meter"); } catch (e) { /* private mode */ }

  // ---- numbers with units ------------------------------------------------------------------------
  const nf = (v, d) => v.toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
  const ok = (v) => typeof v === "number" && isFinite(v);
  const fmtW = (w) => !ok(w) ? "–" : Math.abs(w) >= 10000 ? nf(w / 1000, 1) + " kW" : nf(w, 0) + " W";
  // small energies keep a visible digit (a first hour's 0.003 kWh is not "0.00 kWh")
  const digits = (v) => { const a = Math.abs(v); return a === 0 || a >= 0.1 ? 2 : a >= 0.01 ? 3 : 4; };
  const fmtKWh = (v) => !ok(v) ? "–" : nf(v, Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : digits(v)) + " kWh";
  const fmtKW = (v) => !ok(v) ? "–" : nf(v, digits(v)) + " kW";
  const stepDigits = (step) => Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))); // axis labels
  const UNITS = { m3: "m³", Nm3: "Nm³", ft3: "ft³" };
  const fmtV = (v) => !ok(v) ? "–" : nf(v, 1) + " V";
  const fmtA = (v) => !ok(v) ? "–" : nf(v, Math.abs(v) < 10 ? 2 : 1) + " A";
  const fmtMoney = (v, cur) => !ok(v) ? "–" : nf(v, 2) + (cur ? " " + cur : "");
  const raw = (v) => (ok(v) ? String(v) : "");
  const hhmm = (iso) => iso.slice(11, 16); // local ISO with offset: the meter's wall clock
  const oneLine = (s) => String(s).split(/\r?\n/)[0].slice(0, 240);

  function setFig(el, text, attrs) {
    el.textContent = text;
    for (const k in attrs) el.dataset[k] = typeof attrs[k] === "string" ? attrs[k] : raw(attrs[k]);
  }
  function show(el, on) { el.hidden = !on; }
  function ago(seconds) {
    if (!ok(seconds)) return "";
    const s = Math.max(0, Math.round(seconds));
    return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : nf(s / 3600, 1) + " h";
  }

  // ---- the API ------------------------------------------------------------------------------------
  class ApiError extends Error {}
  async function api(path) {
    const where = path.split("?")[0];
    let r;
    try {
      r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (e) {
      throw new ApiError("the logger does not answer (" + where + ")");
    }
    if (r.status === 401) { needToken(); throw new ApiError("a token is needed"); }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const msg = body && typeof body.error === "string" ? body.error : "HTTP " + r.status;
      throw new ApiError(oneLine(msg) + " (" + where + ")");
    }
    if (body === null) throw new ApiError("the answer is not JSON (" + where + ")");
    return body;
  }
  const q = (params) => {
    const p = new URLSearchParams();
    for (const k in params) if (params[k] != null) p.set(k, params[k]);
    if (S.meter) p.set("meter", S.meter);
    const s = p.toString();
    return s ? "?" + s : "";
  };

  function needToken() {
    if (S.auth) return;
    S.auth = true;
    if (S.es) { S.es.close(); S.es = null; }
    linkState("offline", "no access");
    const el = $("auth-prompt");
    el.textContent = "This logger needs its access token: open ";
    const c = document.createElement("code");
    c.textContent = location.origin + "/login?token=YOUR-TOKEN";
    el.append(c, " once in this browser.");
    show(el, true);
  }
  function cardError(card, err) {
    const el = document.querySelector("#" + card + " .err");
    if (!el) return;
    el.textContent = err ? (err instanceof ApiError ? err.message : "cannot show this: " + oneLine(err)) : "";
    show(el, !!err && !S.auth);
  }

  // ---- power now and the phases --------------------------------------------------------------------
  function showPush(e) {
    const p = e.power || {};
    setFig($("power-import"), fmtW(p.import_w), { w: p.import_w, time: e.time_utc, meter: e.meter });
    setFig($("power-export"), fmtW(p.export_w), { w: p.export_w, time: e.time_utc, meter: e.meter });
    const t = new Date(e.time_utc);
    $("push-time").textContent = (isNaN(t) ? "push" : "push at " + t.toLocaleTimeString()) +
      (e.meter_number ? " · meter " + e.meter_number : "");
    const phases = Array.isArray(e.phases) ? e.phases : [];
    const tb = $("phases").tBodies[0];
    const rows = phases.map((ph) => {
      const tr = document.createElement("tr");
      tr.id = "phase-" + ph.phase;
      for (const [k, f] of [["voltage_v", fmtV], ["current_a", fmtA], ["import_w", fmtW], ["export_w", fmtW]]) {
        tr.dataset[k.replace(/_(.)/g, (m, c) => c.toUpperCase())] = raw(ph[k]);
        const td = document.createElement("td");
        td.textContent = f(ph[k]);
        tr.append(td);
      }
      const th = document.createElement("td");
      th.textContent = "L" + ph.phase;
      tr.prepend(th);
      return tr;
    });
    tb.replaceChildren(...rows);
    show($("phases"), rows.length > 0);
    showReading("gas", e.gas);
    showReading("water", e.water);
  }
  /* A gas or water meter's reading (a P1 meter's M-Bus channel), with its own time: it reads every 5 min or hourly. */
  function showReading(id, g) {
    const on = !!g && ok(g.value);
    show($(id), on);
    if (!on) return;
    setFig($(id + "-value"), nf(g.value, 3) + " " + (UNITS[g.unit] || g.unit || ""), { value: g.value, unit: g.unit || "", time: g.time_utc || "" });
    const t = new Date(g.time_utc);
    $(id + "-time").textContent = isNaN(t) ? "" : "read at " + (t.toDateString() === new Date().toDateString()
      ? t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : t.toLocaleString());
  }

  function pickMeter() {
    const ids = [...S.meters.keys()];
    if (!S.meter || !S.meters.has(S.meter)) S.meter = ids.length ? ids[0] : null;
    const sel = $("meter-picker");
    if (ids.length > 1) {
      const have = [...sel.options].map((o) => o.value).join("\n");
      if (have !== ids.join("\n")) {
        sel.replaceChildren(...ids.map((id) => {
          const e = S.meters.get(id);
          return new Option(e.meter_number ? "meter " + e.meter_number : id, id);
        }));
      }
      sel.value = S.meter;
    }
    sel.dataset.meters = String(ids.length);
    show(sel, ids.length > 1);
  }

  // ---- ports -------------------------------------------------------------------------------------
  function showPorts() {
    const el = $("quiet-warning");
    const bad = S.ports.filter((p) => p && p.state && p.state !== "ok");
    const now = Date.now() + S.skew;
    el.textContent = bad.map((p) => {
      if (p.state === "closed") return "The port " + p.name + " is closed: the logger keeps trying to open it.";
      const last = p.last_push_utc ? Date.parse(p.last_push_utc) : NaN;
      const quiet = isNaN(last) ? p.quiet_seconds : (now - last) / 1000;
      return "No push from " + p.name + (ok(quiet) ? " for " + ago(quiet) : "") +
        ": check the meter's port and its cable.";
    }).join(" ");
    el.dataset.ports = bad.map((p) => p.name).join(" ");
    el.dataset.state = bad.length ? bad[0].state : "ok";
    show(el, bad.length > 0);
  }
  function setPort(p) {
    if (!p || typeof p.name !== "string") return;
    const i = S.ports.findIndex((x) => x.name === p.name);
    if (i < 0) S.ports.push(p); else S.ports[i] = p;
    showPorts();
  }

  // ---- charts --------------------------------------------------------------------------------------
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.append(e);
    return e;
  }
  const drawn = new Map(); // chart box -> redraw (on a new width)
  let lastWidth = innerWidth;
  addEventListener("resize", () => {
    if (innerWidth === lastWidth) return;
    lastWidth = innerWidth;
    clearTimeout(S.resizing);
    S.resizing = setTimeout(() => drawn.forEach((f) => f()), 150);
  });
  function niceStep(span) {
    if (!(span > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(span)));
    const f = span / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }
  function frame(w, h) {
    return el("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img" });
  }
  const widthOf = (box) => Math.max(260, Math.round(box.clientWidth) || 600); // drawn at the real size: text stays legible
  function emptyChart(box, text) {
    const W = widthOf(box), s = frame(W, 60);
    el("text", { x: W / 2, y: 34, "text-anchor": "middle", class: "empty" }, s).textContent = text;
    box.replaceChildren(s);
  }

  /* Bars per period: import up, export down from the zero line; estimated periods light and dashed,
     missing ones a dotted stub.  Each <g> carries the row: data-start, data-import-kwh, ... */
  function barChart(box, rows, label) {
    drawn.set(box, () => barChart(box, rows, label));
    box.dataset.bars = String(rows.length);
    if (!rows.some((r) => ok(r.import_kwh) || ok(r.export_kwh))) { emptyChart(box, "no readings yet"); return; }
    const W = widthOf(box), H = 180, L = 34, R = 2, T = 8, B = 18;
    const maxI = Math.max(0, ...rows.map((r) => (ok(r.import_kwh) ? r.import_kwh : 0)));
    const maxE = Math.max(0, ...rows.map((r) => (ok(r.export_kwh) ? r.export_kwh : 0)));
    const step = niceStep((maxI + maxE) / 4 || 1);
    const top = Math.ceil(maxI / step) * step || step, bottom = Math.ceil(maxE / step) * step;
    const ky = (H - T - B) / (top + bottom);
    const y0 = T + top * ky;
    const s = frame(W, H);
    for (let v = -bottom; v <= top + 1e-9; v += step) {
      const y = y0 - v * ky;
      el("line", { x1: L, x2: W - R, y1: y, y2: y, class: v === 0 ? "axis" : "grid" }, s);
      el("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, s).textContent = nf(Math.abs(v), stepDigits(step));
    }
    el("text", { x: 2, y: H - 4 }, s).textContent = "kWh";
    const slot = (W - L - R) / rows.length, bw = Math.max(1, slot * 0.72);
    rows.forEach((r, i) => {
      const x = L + i * slot + (slot - bw) / 2;
      const g = el("g", { class: "bar" }, s);
      g.dataset.start = r.start;
      g.dataset.importKwh = raw(r.import_kwh);
      g.dataset.exportKwh = raw(r.export_kwh);
      g.dataset.quality = r.quality || "";
      const est = r.quality === "estimated" ? " est" : "";
      if (r.quality === "missing" || (!ok(r.import_kwh) && !ok(r.export_kwh))) {
        el("rect", { x, y: y0 - 2, width: bw, height: 2, class: "miss" }, g);
      } else {
        if (ok(r.import_kwh) && r.import_kwh > 0)
          el("rect", { x, y: y0 - r.import_kwh * ky, width: bw, height: Math.max(0.5, r.import_kwh * ky), class: "b-imp" + est }, g);
        if (ok(r.export_kwh) && r.export_kwh > 0)
          el("rect", { x, y: y0, width: bw, height: Math.max(0.5, r.export_kwh * ky), class: "b-exp" + est }, g);
      }
      el("title", {}, g).textContent = label.title(r) + ": import " + fmtKWh(r.import_kwh) + ", export " +
        fmtKWh(r.export_kwh) + (r.quality && r.quality !== "measured" ? " (" + r.quality + ")" : "");
      const t = label.tick(r, i);
      if (t) el("text", { x: x + bw / 2, y: H - 4, "text-anchor": "middle" }, s).textContent = t;
    });
    box.replaceChildren(s);
  }

  /* The minute series: import mean as a line over an area, export mean as a line; gaps stay gaps. */
  function minuteChart(box, rows) {
    drawn.set(box, () => minuteChart(box, rows));
    box.dataset.points = String(rows.length);
    box.dataset.lastW = rows.length ? raw(rows[rows.length - 1].import_w_mean) : "";
    if (!rows.length) { emptyChart(box, "no pushes in the last hour"); return; }
    const W = widthOf(box), H = 160, L = 34, R = 6, T = 8, B = 18;
    const ts = rows.map((r) => Date.parse(r.start));
    const t1 = ts[ts.length - 1] + 60000, t0 = Math.min(ts[0], t1 - 3600000);
    const maxW = Math.max(1, ...rows.map((r) => Math.max(ok(r.import_w_mean) ? r.import_w_mean : 0, ok(r.export_w_mean) ? r.export_w_mean : 0)));
    const step = niceStep(maxW / 4);
    const top = Math.ceil(maxW / step) * step;
    const X = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
    const Y = (v) => H - B - v / top * (H - T - B);
    const s = frame(W, H);
    for (let v = 0; v <= top + 1e-9; v += step) {
      el("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: v === 0 ? "axis" : "grid" }, s);
      el("text", { x: L - 4, y: Y(v) + 3, "text-anchor": "end" }, s).textContent = v >= 1000 ? nf(v / 1000, step < 1000 ? 1 : 0) + "k" : nf(v, 0);
    }
    el("text", { x: 2, y: H - 4 }, s).textContent = "W";
    const segments = [];
    rows.forEach((r, i) => {
      if (i === 0 || ts[i] - ts[i - 1] > 90000) segments.push([]);
      segments[segments.length - 1].push(i);
    });
    for (const [key, cls] of [["import_w_mean", "imp"], ["export_w_mean", "exp"]]) {
      if (!rows.some((r) => ok(r[key]) && r[key] > 0)) continue;
      for (const seg of segments) {
        const pts = seg.filter((i) => ok(rows[i][key])).map((i) => [X(ts[i] + 30000), Y(rows[i][key])]);
        if (!pts.length) continue;
        const d = pts.map((p, j) => (j ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join("");
        if (cls === "imp")
          el("path", { d: d + "L" + pts[pts.length - 1][0].toFixed(1) + " " + Y(0) + "L" + pts[0][0].toFixed(1) + " " + Y(0) + "Z", class: "a-imp" }, s);
        el("path", { d: pts.length > 1 ? d : d + "h1", class: "l-" + cls }, s);
      }
    }
    rows.forEach((r, i) => {
      if (r.start.slice(14, 16) % 15 === 0)
        el("text", { x: X(ts[i]), y: H - 4, "text-anchor": "middle" }, s).textContent = hhmm(r.start);
    });
    box.replaceChildren(s);
  }

  // ---- the stored figures ----------------------------------------------------------------------------
  const sum = (rows, key) => {
    const v = rows.map((r) => r[key]).filter(ok);
    return v.length ? v.reduce((a, b) => a + b, 0) : null;
  };
  function costOf(rows) {
    const c = rows.filter((r) => r.cost && ok(r.cost.total));
    if (!c.length) return null;
    return { total: c.reduce((a, r) => a + r.cost.total, 0), currency: c[0].cost.currency || "" };
  }
  const WEEKDAY = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  function dayName(iso) { // "2026-12-03T..." -> "Thu 3 Dec" (the meter's calendar date, no time zone games)
    const d = new Date(Date.UTC(+iso.slice(0, 4), +iso.slice(5, 7) - 1, +iso.slice(8, 10)));
    return WEEKDAY[d.getUTCDay()] + " " + d.getUTCDate() + " " + d.toLocaleString(undefined, { month: "short", timeZone: "UTC" });
  }

  function showHours(rows) {
    barChart($("hours-chart"), rows, {
      tick: (r) => (+r.start.slice(11, 13) % 3 === 0 && r.start.slice(14, 16) === "00" ? r.start.slice(11, 13) : null),
      title: (r) => hhmm(r.start) + "–" + hhmm(r.end || r.start),
    });
    const imp = sum(rows, "import_kwh"), exp = sum(rows, "export_kwh");
    setFig($("today-import"), fmtKWh(imp), { kwh: imp });
    setFig($("today-export"), fmtKWh(exp), { kwh: exp });
    $("today-date").textContent = rows.length ? dayName(rows[0].start) : "";
  }
  function showDays(rows, today) {
    barChart($("days-chart"), rows, {
      tick: (r, i) => { const d = +r.start.slice(8, 10); return d === 1 || d % 5 === 0 ? String(d) : null; },
      title: (r) => dayName(r.start),
    });
    const imp = sum(rows, "import_kwh"), exp = sum(rows, "export_kwh");
    setFig($("month-import"), fmtKWh(imp), { kwh: imp });
    setFig($("month-export"), fmtKWh(exp), { kwh: exp });
    const mc = costOf(rows);
    show($("month-cost-wrap"), !!mc);
    if (mc) setFig($("month-cost"), fmtMoney(mc.total, mc.currency), { total: mc.total, currency: mc.currency });
    const d = new Date(Date.UTC(+today.slice(0, 4), +today.slice(5, 7) - 1, 1));
    $("month-name").textContent = d.toLocaleString(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
  }
  function showCost(hourRows, dayRows, today) {
    const day = dayRows.find((r) => r.start.slice(0, 10) === today);
    const c = day && day.cost && ok(day.cost.total) ? { total: day.cost.total, currency: day.cost.currency || "" } : costOf(hourRows);
    show($("cost-wrap"), !!c);
    if (c) setFig($("cost-today"), fmtMoney(c.total, c.currency), { total: c.total, currency: c.currency });
  }
  function showCapacity(res) {
    const c = res && res.capacity;
    $("capacity-rule").textContent = res && res.rule ? res.rule : "";
    show($("capacity-none"), !c);
    show($("capacity-body"), !!c);
    if (!c) return;
    setFig($("capacity-value"), fmtKW(c.value_kw), { kw: c.value_kw });
    const h = c.headroom_kwh;
    setFig($("capacity-headroom"), h === 0 ? "0 kWh" : fmtKWh(h), { kwh: h });
    $("capacity-headroom").title = h == null ? "this hour is outside the tariff's hours (or not this month)"
      : h === 0 ? "this hour already sets the figure" : "more import in this hour before the figure rises";
    const parts = [];
    if (c.step) {
      const st = c.step;
      parts.push("step " + nf(st.from_kw, 0) + (ok(st.to_kw) ? "–" + nf(st.to_kw, 0) : "+") + " kW" +
        (ok(st.price) ? ": " + fmtMoney(st.price, st.currency) + " a month" : ""));
    }
    if (ok(c.step_headroom_kwh)) parts.push(fmtKWh(c.step_headroom_kwh) + " more this hour reaches the next step");
    if (ok(c.billed_kw)) parts.push("billed " + fmtKW(c.billed_kw) + " (mean of " + c.billed_months + " months)");
    if (c.from) parts.push("from the " + c.from);
    $("capacity-step").textContent = parts.join(" · ");
    const hours = Array.isArray(c.hours) ? c.hours : [];
    $("capacity-hours").replaceChildren(...hours.map((x) => {
      const li = document.createElement("li");
      li.dataset.start = x.start;
      li.dataset.kwh = raw(x.import_kwh);
      li.textContent = dayName(x.start) + " " + hhmm(x.start) + ": " +
        (ok(x.kw) && x.kw !== x.import_kwh ? fmtKW(x.kw) + " (quarter hour)" : fmtKWh(x.import_kwh));
      return li;
    }));
  }

  function monthSpan(today) { // "2026-12-03" -> from 2026-12-01 to 2027-01-01
    const y = +today.slice(0, 4), m = +today.slice(5, 7);
    const pad = (n) => String(n).padStart(2, "0");
    return { from: y + "-" + pad(m) + "-01", to: (m === 12 ? y + 1 : y) + "-" + pad(m === 12 ? 1 : m + 1) + "-01" };
  }
  function localToday() {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }

  async function refreshFigures() {
    if (S.auth) return;
    if (S.busy) { S.again = true; return; }
    S.busy = true;
    S.lastRefresh = Date.now();
    try {
      const minutes = api("/api/minutes" + q({ minutes: 60 })).then(
        (rows) => { minuteChart($("minutes-chart"), Array.isArray(rows) ? rows : []); cardError("hour", null); },
        (e) => cardError("hour", e));
      let hourRows = [];
      try {
        hourRows = await api("/api/energy" + q({ by: "hour" }));
        showHours(hourRows);
        cardError("today", null);
      } catch (e) { cardError("today", e); }
      const today = hourRows.length ? hourRows[hourRows.length - 1].start.slice(0, 10) : localToday();
      const span = monthSpan(today);
      const days = api("/api/energy" + q({ by: "day", from: span.from, to: span.to })).then(
        (rows) => { showDays(rows, today); showCost(hourRows, rows, today); cardError("month", null); },
        (e) => { showCost(hourRows, [], today); cardError("month", e); });
      const cap = api("/api/capacity" + q({ month: today.slice(0, 7) })).then(
        (res) => { showCapacity(res); cardError("capacity", null); }, (e) => cardError("capacity", e));
      await Promise.all([minutes, days, cap]);
    } finally {
      S.busy = false;
      document.body.dataset.refreshed = String(Date.now());
      if (S.again) { S.again = false; schedule(); }
    }
  }
  function schedule() {
    if (S.timer) return;
    S.timer = setTimeout(() => { S.timer = null; refreshFigures(); }, Math.max(0, S.lastRefresh + GAP_MS - Date.now()));
  }

  async function refreshLatest() {
    try {
      const all = await api("/api/latest");
      for (const e of all.meters || []) S.meters.set(e.meter, e);
      if (all.now_utc) S.skew = Date.parse(all.now_utc) - Date.now() || 0;
      S.ports = Array.isArray(all.ports) ? all.ports : [];
      pickMeter();
      const mine = S.meters.get(S.meter);
      if (mine) showPush(mine);
      showPorts();
      show($("error-line"), false);
    } catch (e) {
      if (!S.auth) {
        $("error-line").textContent = (e instanceof ApiError ? e.message : oneLine(e)) + "; trying again";
        show($("error-line"), true);
      }
    }
  }
  async function refreshAll() {
    await refreshLatest();
    await refreshFigures();
  }

  // ---- live updates ------------------------------------------------------------------------------------
  function linkState(state, text) {
    const e = $("link-state");
    e.dataset.state = state;
    e.textContent = text || state;
  }
  function connect() {
    if (S.auth) return;
    if (S.es) S.es.close();
    const es = new EventSource("/api/events");
    S.es = es;
    linkState("connecting");
    es.onopen = () => {
      S.retry = 0;
      linkState("live");
      if (S.down) { S.down = false; refreshAll(); } // catch up on what came while away
    };
    es.addEventListener("push", (ev) => {
      let e;
      try { e = JSON.parse(ev.data); } catch (x) { return; }
      if (!e || typeof e.meter !== "string") return;
      const isNew = !S.meters.has(e.meter);
      S.meters.set(e.meter, e);
      if (isNew) pickMeter();
      if (S.ports.length === 1 && S.ports[0].state !== "ok") { // one port: a push means it is back
        S.ports[0] = Object.assign({}, S.ports[0], { state: "ok", last_push_utc: e.time_utc, quiet_seconds: null });
        showPorts();
      }
      if (e.meter === S.meter) { showPush(e); schedule(); }
    });
    es.addEventListener("status", (ev) => {
      try { setPort(JSON.parse(ev.data)); } catch (x) { /* ignore a torn event */ }
    });
    es.onerror = () => {
      if (S.es !== es) return;
      S.down = true;
      linkState("reconnecting");
      if (Date.now() - (S.probed || 0) > 5000) { // says why: the token prompt on 401, else the logger is away
        S.probed = Date.now();
        refreshLatest();
      }
      if (es.readyState === EventSource.CLOSED) { // the browser gave up (an error status): we retry
        es.close();
        S.es = null;
        const wait = Math.min(30000, 1000 * Math.pow(2, S.retry++));
        setTimeout(() => { if (!S.es) connect(); }, wait);
      }
    };
  }

  $("meter-picker").addEventListener("change", (ev) => {
    S.meter = ev.target.value;
    try { localStorage.setItem("han.meter", S.meter); } catch (e) { /* private mode */ }
    const e = S.meters.get(S.meter);
    if (e) showPush(e);
    refreshFigures();
  });
  setInterval(() => { if (S.ports.some((p) => p.state !== "ok")) showPorts(); }, 5000);
  setInterval(() => { if (!S.auth && Date.now() - S.lastRefresh >= PERIODIC_MS) refreshAll(); }, 15000);

  (async () => {
    connect();
    await refreshAll();
    document.body.dataset.ready = "1";
    window.hanReadyMs = performance.now();
  })();
})();

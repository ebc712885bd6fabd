/* bytespike console: progressive enhancement only. Every page reads and works without it;
   with it: times in the viewer's zone (UTC on hover), copy buttons, confirmations,
   selectors that apply on change, and the spend chart (uPlot, vendored). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function localTimes(root) {
    var format = { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
      minute: "2-digit" };
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      var moment = new Date(iso);
      if (isNaN(moment.getTime())) { return; }
      el.textContent = moment.toLocaleString(undefined, format);
      el.title = iso.replace("T", " ").replace("Z", " UTC");
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.querySelector(button.getAttribute("data-copy"));
        if (!target) { return; }
        var text = target.textContent.trim();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { select(target); });
        } else {
          select(target);
        }
      });
    });
  }

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var form = select.form;
      var button = form && form.querySelector("[data-autosubmit-button]");
      if (button) { button.hidden = true; }
      select.addEventListener("change", function () { form.submit(); });
    });
  }

  var PALETTE = ["#2457d6", "#f79009", "#12b76a", "#ee46bc", "#7a5af8", "#06aed4",
    "#f04438", "#667085", "#84cc16", "#a15c07"];

  function money(value) {
    return "$" + value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 2);
  }

  function spendChart() {
    var host = document.getElementById("spend-chart");
    var source = document.getElementById("spend-data");
    if (!host || !source || typeof window.uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    if (!data.series.length) { return; }
    var xs = data.days.map(function (day) { return Date.parse(day + "T12:00:00Z") / 1000; });
    var running = xs.map(function () { return 0; });
    var stacked = data.series.map(function (s) {
      running = running.map(function (total, i) { return total + s.usd[i]; });
      return running.slice();
    });
    // The x series' legend: the hovered bar's UTC day (as the tables write days), else
    // nothing, rather than uPlot's default "Time: --".
    var series = [{
      label: "Day", value: function (u, v, si, at) { return at == null ? "" : data.days[at]; }
    }];
    var columns = [xs];
    var bars = window.uPlot.paths.bars({ size: [0.75, 40] });
    for (var i = stacked.length - 1; i >= 0; i--) {  // the tallest first, the rest over it
      (function (index) {
        var color = PALETTE[index % PALETTE.length];
        series.push({
          label: data.series[index].model, fill: color, stroke: color, width: 0, paths: bars,
          points: { show: false },
          value: function (u, v, si, at) {
            return at == null ? "" : money(data.series[index].usd[at]);
          }
        });
      })(i);
      columns.push(stacked[i]);
    }
    var size = function () { return { width: host.clientWidth, height: 240 }; };
    var plot = new window.uPlot({
      width: size().width, height: size().height, series: series,
      scales: { x: { time: true, range: function (u, min, max) {
        return [min - 43200, max + 43200]; } } },
      axes: [{}, { size: 70, values: function (u, ticks) {
        var step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
        var places = Math.max(2, Math.min(6, Math.ceil(-Math.log10(step))));
        return ticks.map(function (t) { return "$" + t.toFixed(places); });
      } }],
      cursor: { points: { show: false } }, legend: { live: true }
    }, columns, host);
    host.classList.add("drawn");
    window.addEventListener("resize", function () { plot.setSize(size()); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    copyButtons(document);
    confirmations(document);
    autosubmit(document);
    spendChart();
  });
})();

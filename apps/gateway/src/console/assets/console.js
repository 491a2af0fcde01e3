/* global document, navigator, EventSource, uPlot */
// The console's only script (served from /console/assets/, no inline script anywhere):
// local times, the copy button and the audit live tail. Every text it shows goes in as text.
'use strict';

function localTimes(root) {
  for (const el of root.querySelectorAll('time[datetime]')) {
    const at = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(at.getTime())) continue;
    el.textContent = at.toLocaleString();
    el.title = el.getAttribute('datetime') + ' (UTC)';
  }
}

function copyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.addEventListener('click', async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Press Ctrl+C to copy';
      }
    });
  }
}

function cell(text) {
  const span = document.createElement('span');
  span.textContent = text == null ? '' : String(text);
  return span;
}

function liveTail() {
  const toggle = document.getElementById('tail-toggle');
  if (!toggle) return;
  const list = document.getElementById('tail');
  const state = document.getElementById('tail-state');
  let source = null;
  toggle.addEventListener('click', () => {
    if (source) {
      source.close();
      source = null;
      toggle.textContent = 'Start the live tail';
      state.textContent = 'Stopped.';
      return;
    }
    source = new EventSource(toggle.dataset.stream);
    toggle.textContent = 'Stop the live tail';
    state.textContent = 'Waiting for new events…';
    source.addEventListener('open', () => (state.textContent = 'Live: new events appear below.'));
    source.addEventListener('error', () => (state.textContent = 'Connection lost; reconnecting…'));
    source.addEventListener('audit', (message) => {
      const e = JSON.parse(message.data);
      const item = document.createElement('li');
      item.className = 'outcome-' + e.outcome;
      const when = document.createElement('time');
      when.setAttribute('datetime', e.occurredAt);
      when.textContent = e.occurredAt;
      item.append(
        when,
        ' ',
        cell(e.action),
        ' ',
        cell(e.username || '-'),
        ' ',
        cell((e.repository || '') + (e.reference ? ':' + e.reference : '')),
        ' ',
        cell(e.outcome + (e.reason ? ' (' + e.reason + ')' : '')),
      );
      list.prepend(item);
      localTimes(item);
      while (list.children.length > 200) list.lastChild.remove();
    });
  });
}

// Pulls and downloads per UTC day, drawn by uPlot from the numbers the page carries.
function activityChart() {
  const box = document.getElementById('activity-chart');
  if (!box || typeof uPlot === 'undefined') return;
  const data = JSON.parse(box.dataset.series);
  const x = data.days.map((d) => Date.parse(d + 'T00:00:00Z') / 1000);
  const width = Math.min(box.clientWidth || 900, 960);
  const chart = new uPlot(
    {
      width,
      height: 260,
      series: [
        {},
        { label: 'Pulls', stroke: '#0a58ca', width: 2 },
        { label: 'Downloads', stroke: '#a40e26', width: 2 },
      ],
      axes: [{}, { label: 'per day' }],
    },
    [x, data.pulls, data.downloads],
    box,
  );
  box.dataset.drawn = String(chart.data[0].length);
}

document.addEventListener('DOMContentLoaded', () => {
  localTimes(document);
  copyButtons();
  liveTail();
  activityChart();
});

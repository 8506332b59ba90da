// The Concierge console's only script (ui/console.py serves it; the pages hold none of their own).
// Every element with data-live="URL" is replaced by the HTML fragment at URL every two seconds; the forms stay
// outside those elements, so what an agent is typing is kept. An input with data-search="URL" offers the
// catalog items whose title holds what was typed, as the choices of its datalist.
"use strict";

const REFRESH_MS = 2000;
const SEARCH_DELAY_MS = 250;

function refresh(element) {
  if (element.dataset.busy) {
    return;
  }
  element.dataset.busy = "1";
  fetch(element.dataset.live, { credentials: "same-origin", cache: "no-store" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((fragment) => {
      element.innerHTML = fragment;
      element.classList.remove("stale");
    })
    .catch(() => element.classList.add("stale"))
    .finally(() => delete element.dataset.busy);
}

function offerItems(input) {
  const choices = document.getElementById(input.getAttribute("list"));
  let timer = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const typed = input.value.trim();
      if (typed.length < 2) {
        return;
      }
      fetch(`${input.dataset.search}?q=${encodeURIComponent(typed)}`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.text() : ""))
        .then((options) => {
          choices.innerHTML = options;
        });
    }, SEARCH_DELAY_MS);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelectorAll("[data-live]");
  if (live.length) {
    setInterval(() => live.forEach(refresh), REFRESH_MS);
  }
  document.querySelectorAll("input[data-search]").forEach(offerItems);
});

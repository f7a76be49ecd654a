// Progressive enhancement only: every form here also works without this script.
"use strict";

// Votes update in place: the vote form is posted with fetch and the answer (JSON) updates the
// score and the pressed state of the buttons, so the reader keeps their scroll position.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("vote")) return;
  const button = event.submitter;
  if (!button || button.name !== "value") return;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form));
  body.set("value", button.value);
  form.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
    });
    if (response.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); return; }
    if (!response.ok) { form.submit(); return; }
    const vote = await response.json();
    showVote(form, vote);
  } catch (_) {
    form.submit();
  } finally {
    form.removeAttribute("aria-busy");
  }
});

function showVote(form, vote) {
  const score = form.querySelector(".score");
  if (score) score.textContent = String(vote.score);
  const up = form.querySelector("button.up");
  const down = form.querySelector("button.down");
  if (up) { up.setAttribute("aria-pressed", String(vote.my_vote === 1)); up.value = vote.my_vote === 1 ? "0" : "1"; }
  if (down) { down.setAttribute("aria-pressed", String(vote.my_vote === -1)); down.value = vote.my_vote === -1 ? "0" : "-1"; }
}

// The thread summary loads on request, with a visible loading state while it is prepared.
document.addEventListener("click", async (event) => {
  const trigger = event.target instanceof Element ? event.target.closest("[data-summary-url]") : null;
  if (!trigger) return;
  event.preventDefault();
  const box = trigger.closest(".summary-box");
  const status = box.querySelector(".summary-status");
  const text = box.querySelector(".summary-text");
  box.setAttribute("aria-busy", "true");
  trigger.hidden = true;
  status.textContent = "Summarizing this thread";
  const deadline = Date.now() + 90000;
  try {
    while (Date.now() < deadline) {
      const response = await fetch(trigger.dataset.summaryUrl, { headers: { "Accept": "application/json" } });
      if (response.status === 200) {
        const summary = await response.json();
        text.textContent = summary.summary;
        status.textContent = "Summary by " + summary.provider;
        return;
      }
      if (response.status !== 202) {
        const problem = await response.json().catch(() => ({}));
        status.textContent = problem.detail ? "No summary: " + problem.detail : "No summary is available right now.";
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
    status.textContent = "The summary is taking long; try again in a minute.";
  } catch (_) {
    status.textContent = "The summary could not be loaded.";
  } finally {
    box.removeAttribute("aria-busy");
  }
});

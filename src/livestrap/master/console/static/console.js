// livestrap console: our own small behaviours (CSP allows scripts from this origin only).
// A form with data-confirm asks first; nothing else here touches the page.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);

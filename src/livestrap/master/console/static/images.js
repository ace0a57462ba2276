// livestrap console, images page: htmx drops 4xx/5xx answers by default; the import's
// refusal (e.g. a 422 naming the bad member) is what the operator must read, so it is
// swapped into #import-result like a success. Nothing else here touches the page.
document.addEventListener("htmx:beforeSwap", (event) => {
  const detail = event.detail;
  if (detail.target && detail.target.id === "import-result" && detail.xhr.status >= 400) {
    detail.shouldSwap = true;
    detail.isError = false;
  }
});

// The live share page (/s/{slug}): follows the owner's favorite over
// Server-Sent Events and repaints in place. Snapshot pages do not load it.
"use strict";
(() => {
  const slug = location.pathname.split("/").pop();
  const src = new EventSource("/api/v1/shares/" + encodeURIComponent(slug) + "/watch");
  const paint = (hex) => {
    if (!/^#[0-9A-Fa-f]{6}$/.test(hex)) return;
    document.body.style.background = hex;
    document.querySelector(".swatch").style.background = hex;
    document.querySelector(".swatch").setAttribute("aria-label", "colour swatch " + hex);
    document.querySelector("code").textContent = hex;
    document.querySelector('meta[name="theme-color"]').setAttribute("content", hex);
    document.title = "A favorite colour: " + hex;
  };
  src.addEventListener("hex", (e) => paint(JSON.parse(e.data).hex));
  // A revoked or expired link ends the stream with an error event: stop
  // reconnecting and say so.
  src.addEventListener("error", (e) => {
    if (!e.data) return; // a dropped connection: EventSource reconnects itself
    src.close();
    document.querySelector("main p").textContent = "This link no longer works.";
  });
})();

// Placeholder: the review app (webapp writes the real one).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const s = document.getElementById("status");
  if (s) s.textContent = "Sign in with an API key.";
});

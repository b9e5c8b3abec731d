// What is on screen: the view the address names, and the two ways the page is drawn. The views
// and the sign-in form call render and showSignIn from here, and app.js binds them once, so
// nothing below the views imports the views (no import cycle).

const drawers = { render: null, signIn: null };

/** Called once by app.js with the real render and showSignIn. */
export function bindScreen({ render, showSignIn }) {
  drawers.render = render;
  drawers.signIn = showSignIn;
}

/** Draws the current view (views/render.js). */
export function render(options) {
  return drawers.render(options);
}

/** Shows the sign-in form (views/sign-in.js). */
export function showSignIn(known) {
  return drawers.signIn(known);
}

/** The view the address (#overview, #history, #fleet, #settings) names; the overview otherwise. */
export function currentView() {
  const view = location.hash.replace('#', '');
  return ['overview', 'history', 'fleet', 'settings'].includes(view) ? view : 'overview';
}

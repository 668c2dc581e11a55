// web/build.mjs loads *.css imports as minified text (the widget puts it in a <style> element
// inside its Shadow DOM).
declare module '*.css' {
  const css: string;
  export default css;
}

// The glyphs whose text string-width measures as long as it is (one column each, each its own grapheme cluster, no
// emoji, with ambiguous widths narrow as by default): printable ASCII and the BMP ranges below, which hold every
// non-ASCII glyph the screens draw (· … — – ’ × § ✓ ✗ ▸ ▌ ▏ ░ █ • ❯ ↑ ↓ → and the spinner's braille). Used by
// scripts/bundle-cli.mjs for a shortcut in the bundled string-width; test/build/cli-bundle.test.ts checks every glyph
// of it against both string-width copies Ink and wrap-ansi use.
export const NARROW_TEXT =
  '^[\\u0020-\\u007E\\u00A0-\\u00A8\\u00AA-\\u00AC\\u00AF-\\u02FF\\u0400-\\u0482\\u2010-\\u2027\\u2030-\\u203B' +
  '\\u2190-\\u2193\\u2500-\\u25A9\\u25AC-\\u25B5\\u25B7-\\u25BF\\u25C1-\\u25FA\\u2713\\u2715\\u2717-\\u271C' +
  '\\u2765-\\u2794\\u2800-\\u28FF]*$';

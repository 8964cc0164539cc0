"""Layout checks for visitor screens (DESIGN.md §8, issue 10), run in the page in one call.

Each check returns a list of problems (strings) rather than asserting, so a guard can report
every problem of a screen at once. The measurements:

- horizontal scroll: the document is wider than the viewport;
- primary action: the element named by the screen lies inside the viewport at scroll 0;
- overlap: two visible text runs (text nodes, measured line by line) overlap by more than
  2 px across and 30 % of a line's height;
- squeezed text: a Chinese text run that wraps has a full line narrower than four characters
  (4 em) or a last line of one or two characters (参加活动得积/分, 请输入会员/号。); a Latin one
  wraps in a box whose widest line holds under four characters (2 em);
- small text: visible text under 24 CSS px (30 in elder mode);
- small targets: a visible link, button or input under 60×60 CSS px;
- broken dates: a date (12月2日, Wed 2 Dec), a weekday (周三) or a time (09:00) split across two lines;
- broken words: a word the screen names (a name's words: 翠苑一区, 人民文学出版社, 茶香品红韵; words of
  the tiles: 参加) split across two lines (参/加 on a home tile, 人民文/学出版社 in a hit);
- a small date in elder mode: the top bar's date or clock no larger than the smallest text on the
  screen (an elderly visitor reads the date there; at 1080×1920 it was the smallest text);
- overflowing labels: a button's (or button-like link's) text box, the font's full height,
  outside the button's border (a keypad digit taller than its key).
"""

from __future__ import annotations

_SCRIPT = r"""
({primary, minText, words, elder}) => {
  const problems = [];
  const vw = document.documentElement.clientWidth, vh = window.innerHeight;
  window.scrollTo(0, 0);
  if (document.documentElement.scrollWidth > vw + 1) {
    problems.push(`horizontal scroll: ${document.documentElement.scrollWidth} > ${vw}`);
  }
  const visible = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden' || parseFloat(s.opacity) === 0) return false;
      if (e.tagName === 'DIALOG' && !e.open) return false;
    }
    return true;
  };
  for (const selector of primary) {
    const el = document.querySelector(selector);
    if (!el || !visible(el)) { problems.push(`primary action ${selector} missing`); continue; }
    const r = el.getBoundingClientRect();
    if (r.top < 0 || r.left < 0 || r.bottom > vh + 0.5 || r.right > vw + 0.5 || r.width === 0) {
      problems.push(`primary action ${selector} outside the viewport: ${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)} in ${vw}×${vh}`);
    }
  }
  // Text runs: one entry per line box of every visible, non-blank text node.
  const runs = [];
  const sizes = [];
  const holders = new Map();  // text node -> the box its line belongs to (its nearest non-inline ancestor)
  const blockOf = (el) => {
    for (let e = el; e; e = e.parentElement) if (getComputedStyle(e).display !== 'inline') return e;
    return document.body;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const cjk = /[\u3400-\u9fff]/;
  const DATE_UNIT = /\d{1,2}月\d{1,2}日|周[一二三四五六日]|星期[一二三四五六日天]|\d{1,2}:\d{2}|(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s)?\d{1,2}\s(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/g;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (!text) continue;
    const parent = node.parentElement;
    if (!parent || !visible(parent) || parent.closest('script,style,title,.visually-hidden')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    // Merge the rects of one line (a line may come back in pieces).
    const lines = [];
    for (const r of range.getClientRects()) {
      if (r.width < 1 || r.height < 1) continue;
      const line = lines.find((l) => Math.abs(l.top - r.top) < r.height / 2);
      if (line) { line.left = Math.min(line.left, r.left); line.right = Math.max(line.right, r.right); line.bottom = Math.max(line.bottom, r.bottom); }
      else lines.push({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
    }
    if (!lines.length) continue;
    const size = parseFloat(getComputedStyle(parent).fontSize);
    const label = text.slice(0, 16);
    if (size < minText - 0.01) problems.push(`small text ${size}px < ${minText}px: «${label}»`);
    if (lines.length > 1) {
      lines.sort((a, b) => a.top - b.top);
      // Chinese breaks anywhere, so every full line must hold four characters (4 em); Latin
      // breaks at words, so a short line is natural, but a box whose widest line is under
      // four characters (about 2 em) is squeezed.
      if (cjk.test(text)) {
        lines.slice(0, -1).forEach((l) => {
          if (l.right - l.left < size * 4 - 1) problems.push(`squeezed line ${Math.round(l.right - l.left)}px (< 4 characters) in «${label}»`);
        });
      } else if (Math.max(...lines.map((l) => l.right - l.left)) < size * 2 - 1) {
        problems.push(`squeezed text (< 4 characters a line) in «${label}»`);
      }
      const last = lines[lines.length - 1];
      // One or two characters alone on the last line (号。 under 请扫描会员卡或输入会员).
      if (cjk.test(text) && last.right - last.left < size * 2.5) problems.push(`orphan character on the last line of «${label}»`);
    }
    lines.forEach((l) => runs.push({...l, node, label}));
    // A date, a weekday or a time broken across lines (周 at the end of one, 三 on the next).
    for (const match of text.matchAll(DATE_UNIT)) {
      const start = node.textContent.indexOf(text) + match.index;
      const unit = document.createRange();
      unit.setStart(node, start);
      unit.setEnd(node, start + match[0].length);
      const tops = [...unit.getClientRects()].filter((r) => r.width >= 1).map((r) => r.top);
      if (tops.length && Math.max(...tops) - Math.min(...tops) > size / 2) problems.push(`«${match[0]}» broken across lines in «${label}»`);
    }
    holders.set(node, blockOf(parent));
    sizes.push(size);
  }
  // A word (of a name, of a tile) split across lines: 参/加, 人民文/学出版社; measured in the text
  // of its box, so a name in pieces (翠苑街道<wbr>翠苑一区) is one text as the reader sees it.
  const boxes = new Map();
  for (const [node, box] of holders) { if (!boxes.has(box)) boxes.set(box, []); boxes.get(box).push(node); }
  for (const [box, nodes] of boxes) {
    const starts = [];
    let joined = '';
    for (const node of nodes) { starts.push(joined.length); joined += node.textContent; }
    const at = (offset) => { let i = nodes.length - 1; while (i > 0 && starts[i] > offset) i--; return [nodes[i], offset - starts[i]]; };
    for (const word of words) {
      for (let start = joined.indexOf(word); start >= 0; start = joined.indexOf(word, start + 1)) {
        const unit = document.createRange();
        unit.setStart(...at(start));
        unit.setEnd(...at(start + word.length - 1));
        unit.setEnd(unit.endContainer, unit.endOffset + 1);
        const size = parseFloat(getComputedStyle(unit.startContainer.parentElement).fontSize);
        const tops = [...unit.getClientRects()].filter((r) => r.width >= 1).map((r) => r.top);
        if (tops.length && Math.max(...tops) - Math.min(...tops) > size / 2) problems.push(`word «${word}» broken across lines in «${joined.trim().slice(0, 16)}»`);
      }
    }
  }
  if (elder) {
    // Elder mode: the date and clock in the top bar are not the smallest text on the screen.
    const smallest = Math.min(...sizes);
    for (const el of document.querySelectorAll('.topbar [data-date], .topbar [data-clock]')) {
      if (!visible(el)) continue;
      const size = parseFloat(getComputedStyle(el).fontSize);
      if (size < smallest * 1.1 - 0.01) problems.push(`small date in elder mode: «${el.textContent.trim().slice(0, 16)}» ${size}px, the smallest text ${smallest}px`);
    }
  }
  // The same across the pieces of a date_text() (Wed / 2 Dec once broke between its spans):
  // a date unit matched in the text of the pieces' parent, measured over the nodes it spans.
  for (const holder of document.querySelectorAll(':has(> .date-part)')) {
    if (!visible(holder)) continue;
    const nodes = [], starts = [];
    let joined = '';
    const texts = document.createTreeWalker(holder, NodeFilter.SHOW_TEXT);
    for (let node = texts.nextNode(); node; node = texts.nextNode()) { nodes.push(node); starts.push(joined.length); joined += node.textContent; }
    const at = (offset) => { let i = nodes.length - 1; while (i > 0 && starts[i] > offset) i--; return [nodes[i], offset - starts[i]]; };
    for (const match of joined.matchAll(DATE_UNIT)) {
      const unit = document.createRange();
      unit.setStart(...at(match.index));
      unit.setEnd(...at(match.index + match[0].length - 1));
      unit.setEnd(unit.endContainer, unit.endOffset + 1);
      const size = parseFloat(getComputedStyle(holder).fontSize);
      const tops = [...unit.getClientRects()].filter((r) => r.width >= 1).map((r) => r.top);
      if (tops.length && Math.max(...tops) - Math.min(...tops) > size / 2) problems.push(`«${match[0]}» broken across lines in «${joined.trim().slice(0, 16)}»`);
    }
  }
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = runs[i], b = runs[j];
      if (a.node === b.node) continue;
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      // Glyph boxes of adjacent lines may touch by design (a line height under the font's own).
      if (x > 2 && y > 0.3 * Math.min(a.bottom - a.top, b.bottom - b.top)) problems.push(`text overlaps: «${a.label}» and «${b.label}»`);
    }
  }
  for (const el of document.querySelectorAll('a, button, input:not([type=hidden]), select, [role=button]')) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.width < 59.5 || r.height < 59.5) problems.push(`small target ${Math.round(r.width)}×${Math.round(r.height)}: «${(el.innerText || el.name || '').trim().slice(0, 16)}»`);
  }
  // A control's label inside its own box (inside the border): a keypad digit taller than its
  // key (1280×800, elder mode) looked cut off. Text boxes are the font's full height (ascent
  // + descent), as the guard measures text everywhere.
  for (const el of document.querySelectorAll('a.btn, a.key, button, [role=button]')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const s = getComputedStyle(el);
    const inner = {top: box.top + parseFloat(s.borderTopWidth), bottom: box.bottom - parseFloat(s.borderBottomWidth),
                   left: box.left + parseFloat(s.borderLeftWidth), right: box.right - parseFloat(s.borderRightWidth)};
    const labels = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = labels.nextNode(); node; node = labels.nextNode()) {
      if (!node.textContent.trim() || !visible(node.parentElement)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        if (r.width < 1) continue;
        if (r.top < inner.top - 1 || r.bottom > inner.bottom + 1 || r.left < inner.left - 1 || r.right > inner.right + 1) {
          problems.push(`label taller or wider than its target: «${node.textContent.trim().slice(0, 16)}» ${Math.round(r.height)}px in ${Math.round(inner.bottom - inner.top)}px`);
          break;
        }
      }
    }
  }
  return [...new Set(problems)];
}
"""


def layout_problems(page, primary: list[str] | tuple[str, ...], *, elder: bool, words: tuple[str, ...] = ()) -> list[str]:
    """``words``: words that must never be split across two lines wherever they show."""
    return page.evaluate(_SCRIPT, {"primary": list(primary), "minText": 30 if elder else 24, "words": list(words), "elder": elder})

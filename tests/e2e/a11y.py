"""Accessibility checks that run inside the page: labels, visible focus, text contrast."""

from __future__ import annotations

from playwright.async_api import Locator, Page

UNLABELLED_CONTROLS = """() =>
  [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.getClientRects().length > 0)
    .filter((el) =>
      el.tagName === 'BUTTON'
        ? !el.textContent.trim() && !el.getAttribute('aria-label')
        : !el.labels?.length &&
          !el.getAttribute('aria-label') &&
          !el.getAttribute('aria-labelledby'))
    .map((el) => el.outerHTML)
"""

# Past the last control, focus leaves the page for the browser's own controls (body is active).
FOCUS_VISIBLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return true;
  const style = getComputedStyle(el);
  return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
}"""

# WCAG 2.2 AA: 4.5:1 for text, 3:1 for large text (24px, or 18.66px bold). Disabled controls
# are exempt. The background is the first opaque one up the tree, blended through translucent ones.
LOW_CONTRAST_TEXT = """() => {
  const rgba = (css) => {
    const parts = css.match(/[\\d.]+/g)?.map(Number) ?? [0, 0, 0, 0];
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const layer = rgba(getComputedStyle(node).backgroundColor);
      if (layer.a > 0) layers.push(layer);
      if (layer.a === 1) break;
    }
    const white = { r: 255, g: 255, b: 255, a: 1 };
    return layers.reduceRight((below, layer) => over(layer, below), white);
  };
  const luminance = ({ r, g, b }) => {
    const [R, G, B] = [r, g, b].map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (!el.getClientRects().length || el.closest(':disabled, .visually-hidden')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const bg = background(el);
    const fg = over(rgba(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 40);
      failures.push(`${ratio.toFixed(2)}:1, ${style.color} on ${JSON.stringify(bg)}: ${text}`);
    }
  }
  return failures;
}"""


async def unlabelled_controls(page: Page) -> list[str]:
    """Visible form controls without an accessible name."""
    controls: list[str] = await page.evaluate(UNLABELLED_CONTROLS)
    return controls


async def low_contrast_text(page: Page) -> list[str]:
    """Visible text below the WCAG AA contrast ratio against its background."""
    failures: list[str] = await page.evaluate(LOW_CONTRAST_TEXT)
    return failures


async def tab_to(page: Page, target: Locator, max_presses: int = 60) -> None:
    """Presses Tab until `target` has focus, checking that every stop shows a focus ring."""
    for _ in range(max_presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => document.activeElement?.outerHTML.slice(0, 120)")
        assert await page.evaluate(FOCUS_VISIBLE), f"no visible focus on {focused}"
        if await target.evaluate("(el) => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


# WCAG 2.5.5 (AAA) size: 44 by 44 CSS px for every visible thing a finger may tap. A checkbox
# counts by its label, which takes the tap for it.
SMALL_TAP_TARGETS = """() =>
  [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
    .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden')
    .filter((el) => !el.closest('dialog:not([open])'))
    .map((el) => [el, el.matches('[type=checkbox], [type=radio]') ? el.closest('label') ?? el : el])
    .filter(([, target]) => {
      const box = target.getBoundingClientRect();
      return box.width < 44 || box.height < 44;
    })
    .map(([el, target]) => {
      const box = target.getBoundingClientRect();
      return `${Math.round(box.width)}x${Math.round(box.height)}: ${el.outerHTML.slice(0, 100)}`;
    })
"""


async def small_tap_targets(page: Page) -> list[str]:
    """Visible controls and links smaller than 44 by 44 CSS px."""
    failures: list[str] = await page.evaluate(SMALL_TAP_TARGETS)
    return failures


# A control is covered when the topmost element at its centre is neither it nor inside it.
COVERED_CONTROLS = """() =>
  [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
    .filter((el) => el.checkVisibility({ visibilityProperty: true }))
    .filter((el) => {
      const box = el.getBoundingClientRect();
      const x = box.left + box.width / 2;
      const y = box.top + box.height / 2;
      if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) return false;
      const top = document.elementFromPoint(x, y);
      return !(top && (el === top || el.contains(top) || top.closest('label')?.control === el));
    })
    .map((el) => el.outerHTML.slice(0, 100))
"""


async def covered_controls(page: Page) -> list[str]:
    """Controls in view that something else sits on top of."""
    covered: list[str] = await page.evaluate(COVERED_CONTROLS)
    return covered

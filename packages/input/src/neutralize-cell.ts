/**
 * Text from the web or an LLM is written to sheets and CSV exports; a spreadsheet must
 * show it, never run it. Per OWASP's CSV-injection guidance, a value a spreadsheet could
 * read as a formula gets a leading `'`, which Sheets and Excel treat as "this is text"
 * even when written with USER_ENTERED.
 */
const STARTS_WITH_TAB_OR_CR = /^[\t\r]/;
/** Leading whitespace is allowed before the trigger: some apps trim it before parsing. */
const STARTS_WITH_FORMULA_CHARACTER = /^\s*[=+\-@]/;
/** Numbers stay numbers: `-12.5` or `+3e2` cannot hide a formula. */
const PLAIN_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Also strips ASCII control characters except newline: CR/CRLF become `\n` and tabs become
 * spaces (so "a\tb" does not turn into "ab"); the rest are dropped, which also stops a
 * NUL or ESC from hiding a `=` behind it. Idempotent.
 */
export function neutralizeCell(value: string): string {
  const text = value
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, ' ')
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .replace(/[\u0000-\u0009\u000B-\u001F\u007F]/g, '');
  const risky = STARTS_WITH_TAB_OR_CR.test(value) || STARTS_WITH_FORMULA_CHARACTER.test(text);
  return risky && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}

/**
 * `--redact`: mask personal data and secrets in message text before anything is hashed or written.
 * Patterns run in a fixed order (secrets first, so a key that contains digits is not half-masked
 * as a phone number); card numbers are masked only when they pass the Luhn check.
 */

export const REDACTION_KINDS = ['secret', 'email', 'card', 'ip', 'phone'] as const;
export type RedactionKind = (typeof REDACTION_KINDS)[number];
export type RedactionCounts = Record<RedactionKind, number>;

export function emptyRedactionCounts(): RedactionCounts {
  return { secret: 0, email: 0, card: 0, ip: 0, phone: 0 };
}

const MASK: Record<RedactionKind, string> = {
  secret: '[SECRET]',
  email: '[EMAIL]',
  card: '[CARD]',
  ip: '[IP]',
  phone: '[PHONE]',
};

// Secret-looking tokens: vendor key prefixes, bearer tokens, JWTs, and `key = value` assignments.
const SECRET = new RegExp(
  [
    String.raw`\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}`, // OpenAI, Anthropic, Stripe style
    String.raw`\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}`, // Stripe
    String.raw`\bAKIA[0-9A-Z]{16}\b`, // AWS access key id
    String.raw`\bgh[pousr]_[A-Za-z0-9]{30,}`, // GitHub
    String.raw`\bgithub_pat_[A-Za-z0-9_]{40,}`,
    String.raw`\bxox[abposr]-[A-Za-z0-9-]{10,}`, // Slack
    String.raw`\bAIza[0-9A-Za-z_-]{35}`, // Google API key
    String.raw`\bhf_[A-Za-z0-9]{30,}`, // Hugging Face
    String.raw`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`, // JWT
    String.raw`(?<=\bBearer\s+)[A-Za-z0-9._~+/-]{16,}=*`, // Authorization: Bearer <token>
    String.raw`(?<=\b(?:api[_-]?key|secret|token|password|passwd)["']?\s*[:=]\s*["']?)[A-Za-z0-9._~+/-]{12,}`,
  ].join('|'),
  'gi',
);
const EMAIL = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g;
// 13–19 digits, optionally grouped by single spaces or dashes; masked only if Luhn-valid.
const CARD = /\b\d(?:[ -]?\d){12,18}\b/g;
const IPV4 = /\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b/g;
const IPV6 = new RegExp(
  [
    String.raw`(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])`, // all eight groups
    String.raw`(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![\w:])`, // with `::`
  ].join('|'),
  'g',
);
// Phone numbers need separators or a leading `+`, so plain numbers in maths and code are left alone.
// A longer run of digit groups (a card that failed the Luhn check, an id) is not a phone number.
const PHONE = new RegExp(
  [
    String.raw`(?<![\w+]|\d[ .-])(?:\+\d{1,3}[ .-]?)?` + // not inside a longer number; an optional country code
      String.raw`(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?!\w|[ .-]\d)`, // area code, separated groups
    String.raw`(?<![\w+])\+\d{7,14}(?!\w)`, // `+` and the digits alone
  ].join('|'),
  'g',
);

/** True when a digit string passes the Luhn checksum (used by every payment card number). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

// Most text contains none of these; a cheap pre-test skips the regexes for it.
const MAYBE_SENSITIVE = /[@\d]|sk|pk|rk|AKIA|gh|xox|AIza|hf_|eyJ|bearer|key|secret|token|passw/i;

/** Mask sensitive spans in `text`, adding what was found to `counts`. */
export function redactText(text: string, counts: RedactionCounts): string {
  if (!MAYBE_SENSITIVE.test(text)) return text;
  let out = text.replace(SECRET, () => {
    counts.secret++;
    return MASK.secret;
  });
  out = out.replace(EMAIL, () => {
    counts.email++;
    return MASK.email;
  });
  out = out.replace(CARD, (match) => {
    const digits = match.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return match;
    counts.card++;
    return MASK.card;
  });
  out = out.replace(IPV4, () => {
    counts.ip++;
    return MASK.ip;
  });
  out = out.replace(IPV6, () => {
    counts.ip++;
    return MASK.ip;
  });
  out = out.replace(PHONE, () => {
    counts.phone++;
    return MASK.phone;
  });
  return out;
}

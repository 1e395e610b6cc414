/**
 * Header cells as people type them ("Website URL", "countryCode", " Country ") become the
 * snake_case hint names the pipeline matches on ("website_url", "country_code", "country").
 */
export function toSnakeCase(header: string): string {
  return header
    .normalize('NFKC')
    .trim()
    .replace(/(\p{Ll}|\p{N})(\p{Lu})/gu, '$1_$2')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '_')
    .replace(/^_+|_+$/g, '');
}

import type { FieldValue, RecipeField } from './recipe.js';

/**
 * A field's value as the text of an export or sheet cell: empty when unknown, sources one URL
 * after another separated by spaces (a URL may hold a comma), other lists joined with `, `.
 * Formulas are neutralised where cells are written, not here.
 */
export function fieldText(field: RecipeField, value: FieldValue | undefined): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.join(field.type === 'sources' ? ' ' : ', ');
  return String(value);
}

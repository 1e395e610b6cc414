import { describe, expect, it } from 'vitest';
import { fieldText } from './field-text.js';
import type { RecipeField } from './recipe.js';

const field = (type: RecipeField['type']): RecipeField => ({ name: 'f', type, description: 'F', required: false });

describe('fieldText', () => {
  it('writes an unknown value as an empty cell', () => {
    expect(fieldText(field('string'), null)).toBe('');
    expect(fieldText(field('integer'), undefined)).toBe('');
  });

  it('separates sources by spaces (a URL may hold a comma) and other lists by commas', () => {
    expect(fieldText(field('sources'), ['https://a.example/x,y', 'https://b.example/'])).toBe('https://a.example/x,y https://b.example/');
    expect(fieldText(field('list'), ['red', 'blue'])).toBe('red, blue');
  });

  it('writes numbers and booleans as JSON would', () => {
    expect(fieldText(field('integer'), 1990)).toBe('1990');
    expect(fieldText(field('number'), 0.5)).toBe('0.5');
    expect(fieldText(field('boolean'), false)).toBe('false');
  });
});

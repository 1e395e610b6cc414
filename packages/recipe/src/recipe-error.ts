import { BadInputError } from '@brandq/errors';

export interface RecipeIssue {
  step?: string;
  field?: string;
  message: string;
}

/** A recipe that cannot be used; the message lists every issue, one line each, for the person who wrote it. */
export class RecipeError extends BadInputError {
  readonly issues: readonly RecipeIssue[];

  constructor(origin: string, issues: readonly RecipeIssue[]) {
    super(issues.map((issue) => formatIssue(origin, issue)).join('\n'), { details: { recipe: origin, issues } });
    this.issues = issues;
  }
}

function formatIssue(origin: string, issue: RecipeIssue): string {
  const where = [issue.step === undefined ? '' : `step "${issue.step}"`, issue.field === undefined ? '' : `field "${issue.field}"`]
    .filter(Boolean)
    .join(', ');
  return `recipe ${origin}: ${where ? `${where}: ` : ''}${issue.message}`;
}

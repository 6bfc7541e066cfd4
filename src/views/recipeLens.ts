/**
 * "Start QLoRA Run" CodeLens at the top of every recipe file.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';

class RecipeLensProvider implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const top = new vscode.Range(0, 0, 0, 0);
    return [
      new vscode.CodeLens(top, { title: '$(play) Start QLoRA Run', command: 'qloraStudio.startRun', arguments: [doc.uri] }),
    ];
  }
}

/** Registers the lens for `*.qlora.yaml` / `*.qlora.yml` files. */
export function registerRecipeLens(ctx: Ctx): void {
  ctx.push(
    vscode.languages.registerCodeLensProvider(
      [{ pattern: '**/*.qlora.{yaml,yml}' }, { language: 'qlora-recipe' }],
      new RecipeLensProvider(),
    ),
  );
}

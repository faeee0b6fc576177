import { listSandboxFiles, readSandboxFile } from './sandbox.js';

/** One finding of `scan_secrets`. */
export interface Finding {
  file: string;
  line?: number;
  rule: string;
  severity: 'low' | 'medium' | 'high';
}

const SENSITIVE_NAMES: { rule: string; test: RegExp; severity: Finding['severity'] }[] = [
  { rule: 'dotenv-file', test: /(^|\/)\.env(\.|$)/, severity: 'medium' },
  { rule: 'private-key-file', test: /(^|\/)(id_rsa|id_ed25519)$|\.pem$|\.key$/, severity: 'high' },
  { rule: 'credentials-file', test: /(^|\/)credentials(\.\w+)?$/, severity: 'high' },
];

const SECRET_PATTERNS: { rule: string; test: RegExp; severity: Finding['severity'] }[] = [
  { rule: 'private-key-block', test: /-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----/, severity: 'high' },
  { rule: 'hard-coded-password', test: /\bpassword\s*[:=]\s*['"][^'"]{4,}['"]/i, severity: 'high' },
  { rule: 'api-key-assignment', test: /\bapi[_-]?key\s*[:=]\s*['"][^'"]{8,}['"]/i, severity: 'medium' },
  { rule: 'bearer-token-literal', test: /\bBearer\s+[A-Za-z0-9\-._~+/]{20,}/, severity: 'medium' },
];

/**
 * `scan_secrets`: looks for committed secrets under a sandbox file or folder, by file name (`.env`,
 * keys, credentials) and by content (private key blocks, hard-coded passwords and API keys).
 */
export async function scanSecrets(
  sandboxDir: string,
  input: { path: string },
): Promise<{ path: string; files_scanned: number; findings: Finding[] }> {
  const files = await listSandboxFiles(sandboxDir, input.path);
  const findings: Finding[] = [];
  for (const file of files) {
    for (const { rule, test, severity } of SENSITIVE_NAMES)
      if (test.test(file)) findings.push({ file, rule, severity });
    const { text } = await readSandboxFile(sandboxDir, file).catch(() => ({ text: '' }));
    text.split(/\r?\n/).forEach((line, i) => {
      for (const { rule, test, severity } of SECRET_PATTERNS) {
        if (test.test(line)) findings.push({ file, line: i + 1, rule, severity });
      }
    });
  }
  return { path: input.path, files_scanned: files.length, findings };
}

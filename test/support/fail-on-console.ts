// hotspare logs through pino, never console: a console call in code under test is a defect.
for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  console[method] = (...args: unknown[]) => {
    throw new Error(`console.${method} called: ${args.map(String).join(' ').slice(0, 200)}`);
  };
}

// The addon's C++ sources for binding.gyp: every .cpp in native/cpu and native/binding.
// DITTY_NATIVE_ONLY=gemm,nf4 (development builds) keeps the core files and those families only.
const fs = require('node:fs');
const path = require('node:path');
const CORE = new Set(['buffer.cpp', 'parallel.cpp', 'cpu_features.cpp', 'addon.cpp', 'bind_buffers.cpp']);
const only = process.env.DITTY_NATIVE_ONLY ? process.env.DITTY_NATIVE_ONLY.split(',') : undefined;
const wanted = (f) => !only || CORE.has(f) || only.some((fam) => f.startsWith(fam) || f.startsWith(`bind_${fam}`));
const out = [];
for (const dir of ['native/cpu', 'native/binding']) {
  for (const f of fs.readdirSync(path.join(__dirname, '..', dir)).sort()) if (f.endsWith('.cpp') && wanted(f)) out.push(`${dir}/${f}`);
}
process.stdout.write(out.join(' '));

// The addon's C++ sources for binding.gyp: every .cpp in native/cpu and native/binding.
// DITTY_NATIVE_ONLY=gemm,nf4 (development builds) keeps the core files and those families only.
//   --defines / --libraries: what linking the CUDA device adds (DITTY_WITH_CUDA, the static library
//   and static cudart), from build/cuda/link.json, which scripts/build-native.mjs writes when the
//   CUDA part compiled; nothing without it.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const mode = process.argv[2];
if (mode === '--defines' || mode === '--libraries') {
  const file = path.join(root, 'build', 'cuda', 'link.json');
  if (!fs.existsSync(file)) process.exit(0);
  const link = JSON.parse(fs.readFileSync(file, 'utf8'));
  const out = mode === '--defines' ? ['DITTY_WITH_CUDA']
    : [link.library, `-L${link.lib64}`, '-lcudart_static', '-ldl', '-lrt', '-lpthread'];
  process.stdout.write(out.join(' '));
  process.exit(0);
}
const CORE = new Set(['buffer.cpp', 'parallel.cpp', 'cpu_features.cpp', 'addon.cpp', 'bind_buffers.cpp']);
const only = process.env.DITTY_NATIVE_ONLY ? process.env.DITTY_NATIVE_ONLY.split(',') : undefined;
const wanted = (f) => !only || CORE.has(f) || only.some((fam) => f.startsWith(fam) || f.startsWith(`bind_${fam}`));
const out = [];
for (const dir of ['native/cpu', 'native/binding']) {
  for (const f of fs.readdirSync(path.join(root, dir)).sort()) if (f.endsWith('.cpp') && wanted(f)) out.push(`${dir}/${f}`);
}
process.stdout.write(out.join(' '));

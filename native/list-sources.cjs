// The addon's C++ sources for binding.gyp: every .cpp in native/cpu and native/binding.
const fs = require('node:fs');
const path = require('node:path');
const out = [];
for (const dir of ['native/cpu', 'native/binding']) {
  for (const f of fs.readdirSync(path.join(__dirname, '..', dir)).sort()) if (f.endsWith('.cpp')) out.push(`${dir}/${f}`);
}
process.stdout.write(out.join(' '));

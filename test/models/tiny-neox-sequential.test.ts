import { describeReferenceFixture } from './reference-suite.js';

describeReferenceFixture('tiny-neox-sequential');

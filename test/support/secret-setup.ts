// Runs before every test file: the registry watches fetch and TOTP codes (secret-hooks.ts).
import { watchFetch, watchOtp } from './secret-hooks.js';

watchFetch();
watchOtp();

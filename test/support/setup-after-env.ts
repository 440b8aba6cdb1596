/**
 * Silences and captures everything tests print (console and raw stdout/stderr writes), so
 * assertions can check that no log line carries a password. See ./captured-output.ts.
 */
import 'aws-sdk-client-mock-jest';
import { installOutputCapture } from './captured-output';

installOutputCapture();

// The entry point: takes a #token= from the address and starts the queries every page needs,
// then loads the shell and the charts (most of the bundle) while those queries run.

import { getToken, takeTokenFromFragment } from './api';
import { context } from './context';

takeTokenFromFragment();
if (getToken()) context().catch(() => { /* the shell shows the error or the sign-in screen */ });
import('./app');

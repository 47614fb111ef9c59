// createApp(ctx): the Express app from explicit dependencies. It never listens; main.ts does.
import express, { type Express } from 'express';
import type { AppContext } from './context.js';
import { errorHandler } from './errors.js';
import { jsonBody, notFound, requestContext } from './http/middleware.js';
import { widgetScript } from './http/widget-script.js';
import { manageRouter } from './manage/index.js';
import { rateHeadersOnRefusals } from './widget/guard.js';
import { widgetCors, widgetRouter } from './widget/index.js';

export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', ctx.config.trustProxy);

  app.use(requestContext(ctx));
  app.get('/healthz', (_req, res) => {
    ctx.db.prepare('SELECT 1').get();
    res.json({ status: 'ok' });
  });
  app.use(widgetScript());
  app.use('/v1/widget/:serviceId', widgetCors(ctx));
  app.use(jsonBody());
  app.use('/v1/widget', widgetRouter(ctx));
  app.use('/v1', manageRouter(ctx));
  app.use(notFound);
  app.use('/v1/widget', rateHeadersOnRefusals(ctx));
  app.use(
    errorHandler((err, requestId) => {
      ctx.logger.error({ err, request_id: requestId }, 'unhandled error');
    }),
  );
  return app;
}

import { ExecutionContext, OnModuleDestroy } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import passport from 'passport';
import CustomStrategy from 'passport-custom';

let instances = 0;

/**
 * A passport strategy registered under a name of its own instance (`<kind>#<n>`), not a fixed
 * one. Passport keeps strategies in one process-wide registry keyed by name; with a fixed name
 * a second gateway in the same process (the test stacks) replaces the first one's strategy, and
 * the first gateway then checks credentials with the second one's secrets. Each application
 * builds its own strategy instance (a Nest provider), so each gets a name no other application
 * uses, and its guard (AppPassportGuard) asks passport for exactly that name. The strategy
 * leaves the registry when its application closes.
 *
 * The header parsing stays ours (passport-custom hands the request to `validate`): the gateway
 * has one Basic parser and one Bearer parser, used on every surface.
 */
export class AppScopedStrategy extends CustomStrategy implements OnModuleDestroy {
  constructor(kind: string, verify: CustomStrategy.VerifyCallback) {
    super(verify);
    (this as { name: string }).name = `${kind}#${++instances}`;
  }

  get strategyName(): string {
    return this.name;
  }

  onModuleDestroy(): void {
    passport.unuse(this.name);
  }
}

/**
 * @nestjs/passport's AuthGuard for one application's strategy. Subclasses say what a success
 * stores and what a failure does (`refuse`: throw the surface's own error, or store a deferred
 * decision): passport's default answer (a bare 401) never reaches a client. Errors the strategy
 * throws (e.g. an OciError carrying the surface's challenge) pass through unchanged. What the
 * subclass returns is stored at `request[property]`.
 */
export abstract class AppPassportGuard<TStored> extends AuthGuard() {
  constructor(strategy: AppScopedStrategy, property: string) {
    super({ defaultStrategy: strategy.strategyName, session: false, property });
  }

  protected abstract accept(user: unknown, context: ExecutionContext): TStored;

  protected abstract refuse(info: unknown, context: ExecutionContext): TStored;

  override handleRequest<T = TStored>(
    err: unknown,
    user: unknown,
    info: unknown,
    context: ExecutionContext,
  ): T {
    if (err) throw err;
    return (user ? this.accept(user, context) : this.refuse(info, context)) as unknown as T;
  }
}

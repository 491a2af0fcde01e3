import { Injectable, OnModuleInit } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { AccessKeyHasher } from '@gatehouse/members';
import { MEMBER_TAG_KEY_PURPOSE, UpstreamRegistryClient } from '@gatehouse/upstream';

/**
 * UPSTREAM_SEND_MEMBER_TAG: hands the upstream client the key member tags are made with,
 * derived from ACCESS_KEY_SECRET_FILE (the same on every replica), before the first request.
 */
@Injectable()
export class UpstreamMemberTagWiring implements OnModuleInit {
  constructor(
    private readonly config: GatewayConfig,
    private readonly client: UpstreamRegistryClient,
    private readonly hasher: AccessKeyHasher,
  ) {}

  onModuleInit(): void {
    if (this.config.upstream.sendMemberTag)
      this.client.useMemberTagKey(this.hasher.derivedKey(MEMBER_TAG_KEY_PURPOSE));
  }
}

import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { BackOfficeEvents, UserLogoutSuccessNotification } from 'backoffice-identity';
import { HostConfig } from './host-config.js';

/** After a back-office logout, sends the browser to the identity provider's end-session endpoint. */
@Injectable()
export class EndSessionListener {
  constructor(private readonly config: HostConfig) {}

  @OnEvent(BackOfficeEvents.LogoutSuccess)
  onLogout(notification: UserLogoutSuccessNotification): void {
    const url = new URL(this.config.endSessionUrl);
    url.searchParams.set('post_logout_redirect_uri', this.config.publicUrl);
    notification.signOutRedirectUrl = url.toString();
  }
}
